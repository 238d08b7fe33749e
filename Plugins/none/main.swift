import CNI
import CNIPlugins

// docker's "none" network: the container gets its loopback interface and nothing else.
PluginMain.main(LoopbackPlugin(name: "none"))
