import CNI
import CNIPlugins

PluginMain.main(TuningPlugin())
