import CNI
import CNIPlugins

// All of berth's CNI plugins in one executable, installed under each plugin's name: the name
// it is started as picks the plugin (see MulticallPlugins).
MulticallPlugins.main([
    "bridge": BridgePlugin(),
    "host-local": HostLocalPlugin(),
    "firewall": FirewallPlugin(),
    "tuning": TuningPlugin(),
    "loopback": LoopbackPlugin(name: "loopback"),
    "none": LoopbackPlugin(name: "none"),
    "dnsname": DNSNamePlugin(),
    "portmap": PortmapPlugin(),
])
