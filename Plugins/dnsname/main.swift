import CNI
import CNIPlugins

PluginMain.main(DNSNamePlugin())
