// swift-tools-version:6.0
// berth: container networking for Linux. See ARCHITECTURE.md for what each target owns.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "berth",
    products: [
        .executable(name: "berth-cni", targets: ["berth-cni"]),
        .executable(name: "berth", targets: ["berth"]),
        .executable(name: "berth-dns", targets: ["berth-dns"]),
        .executable(name: "berth-proxy", targets: ["berth-proxy"]),
    ],
    targets: [
        // C: system libraries and the few wrappers Swift cannot import.
        .systemLibrary(name: "CMnl", pkgConfig: "libmnl"),
        .systemLibrary(name: "CNftnl", pkgConfig: "libnftnl"),
        .systemLibrary(name: "CCap", pkgConfig: "libcap"),
        .target(name: "CBerth", dependencies: ["CMnl"]),

        // Pure Swift foundations (no Foundation: plugin start-up stays lean).
        .target(name: "BerthSupport", dependencies: ["CBerth"], swiftSettings: strict),
        .target(name: "JSON", swiftSettings: strict),
        .target(name: "Addressing", swiftSettings: strict),

        // Kernel access.
        .target(name: "Namespaces", dependencies: ["BerthSupport", "CBerth"], swiftSettings: strict),
        .target(
            name: "Netlink", dependencies: ["BerthSupport", "Addressing", "Namespaces", "CBerth", "CMnl"],
            swiftSettings: strict),
        .target(
            name: "Firewall", dependencies: ["BerthSupport", "Addressing", "Namespaces", "CBerth", "CMnl", "CNftnl"],
            swiftSettings: strict),

        // The epoll reactor berth's servers (berth-dns, berth-proxy) run on.
        .target(name: "Reactor", dependencies: ["BerthSupport", "CBerth"], swiftSettings: strict),

        // The resolver: message codec, zone, cache, forwarding, server (berth-dns and dnsname).
        .target(
            name: "DNS", dependencies: ["BerthSupport", "Addressing", "Reactor", "IPAM", "CBerth"], swiftSettings: strict),
        // The userland port proxy (docker-proxy compatible; many mappings per process).
        .target(
            name: "Proxy", dependencies: ["Reactor", "BerthSupport", "Addressing", "CBerth"], swiftSettings: strict),

        // Address management (host-local's allocator and on-disk store).
        .target(name: "IPAM", dependencies: ["BerthSupport", "JSON", "Addressing"], swiftSettings: strict),

        // The CNI protocol (plugin side and runtime side) and the plugins' logic.
        .target(name: "CNI", dependencies: ["BerthSupport", "JSON", "Addressing"], swiftSettings: strict),
        .target(
            name: "CNIPlugins",
            dependencies: ["CNI", "Netlink", "Namespaces", "Firewall", "IPAM", "BerthSupport", "Addressing", "JSON", "DNS"],
            swiftSettings: strict),


        // The plugins: one executable, installed under each plugin's name.
        .executableTarget(name: "berth-cni", dependencies: ["CNIPlugins", "CNI"], path: "Plugins/berth-cni", swiftSettings: strict),

        // Programs.
        .executableTarget(name: "berth", dependencies: ["CNI", "BerthSupport", "JSON"], swiftSettings: strict),
        .executableTarget(name: "berth-dns", dependencies: ["DNS", "BerthSupport"], swiftSettings: strict),
        .executableTarget(name: "berth-proxy", dependencies: ["Proxy", "BerthSupport"], swiftSettings: strict),

        .target(name: "TestSupport", dependencies: ["BerthSupport", "JSON"], path: "Tests/TestSupport"),
        .testTarget(
            name: "UnitTests", dependencies: ["JSON", "Addressing", "CNI", "BerthSupport", "IPAM", "Reactor", "DNS", "Proxy", "TestSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "MessageTests", dependencies: ["Netlink", "Firewall", "Addressing", "BerthSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "KernelTests",
            dependencies: [
                "Netlink", "Namespaces", "Firewall", "CNI", "BerthSupport", "JSON", "Addressing", "DNS", "Proxy", "Reactor",
                "TestSupport",
            ],
            swiftSettings: strict),
    ]
)
