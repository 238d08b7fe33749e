import CNI
import CNIPlugins

PluginMain.main(LoopbackPlugin(name: "loopback"))
