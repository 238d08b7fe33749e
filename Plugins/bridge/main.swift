import CNI
import CNIPlugins

PluginMain.main(BridgePlugin())
