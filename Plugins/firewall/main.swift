import CNI
import CNIPlugins

PluginMain.main(FirewallPlugin())
