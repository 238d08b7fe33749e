import CNI
import CNIPlugins

PluginMain.main(HostLocalPlugin())
