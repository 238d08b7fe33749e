// swift-tools-version:6.0
// berth: container networking for Linux. See ARCHITECTURE.md for what each target owns.
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// One thin executable per CNI plugin; everything it does lives in CNIPlugins.
func plugin(_ name: String) -> Target {
    .executableTarget(
        name: name, dependencies: ["CNIPlugins", "CNI"], path: "Plugins/\(name)",
        swiftSettings: strict)
}

let package = Package(
    name: "berth",
    products: [
        .executable(name: "loopback", targets: ["loopback"]),
        .executable(name: "none", targets: ["none"]),
        .executable(name: "berth", targets: ["berth"]),
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
            name: "Firewall", dependencies: ["BerthSupport", "Addressing", "CBerth", "CMnl", "CNftnl"],
            swiftSettings: strict),

        // The epoll reactor berth's servers (berth-dns, berth-proxy) run on.
        .target(name: "Reactor", dependencies: ["BerthSupport", "CBerth"], swiftSettings: strict),

        // The userland port proxy (docker-proxy compatible; many mappings per process).
        .target(
            name: "Proxy", dependencies: ["Reactor", "BerthSupport", "Addressing", "CBerth"], swiftSettings: strict),

        // Address management (host-local's allocator and on-disk store).
        .target(name: "IPAM", dependencies: ["BerthSupport", "JSON", "Addressing"], swiftSettings: strict),

        // The CNI protocol (plugin side and runtime side) and the plugins' logic.
        .target(name: "CNI", dependencies: ["BerthSupport", "JSON", "Addressing"], swiftSettings: strict),
        .target(
            name: "CNIPlugins",
            dependencies: ["CNI", "Netlink", "Namespaces", "Firewall", "BerthSupport", "Addressing", "JSON"],
            swiftSettings: strict),

        plugin("loopback"),
        plugin("none"),

        // Programs.
        .executableTarget(name: "berth", dependencies: ["CNI", "BerthSupport", "JSON"], swiftSettings: strict),
        .executableTarget(name: "berth-proxy", dependencies: ["Proxy", "BerthSupport"], swiftSettings: strict),

        .testTarget(
            name: "UnitTests", dependencies: ["JSON", "Addressing", "CNI", "BerthSupport", "IPAM", "Reactor", "Proxy"],
            swiftSettings: strict),
        .testTarget(
            name: "MessageTests", dependencies: ["Netlink", "Firewall", "Addressing", "BerthSupport"],
            swiftSettings: strict),
        .testTarget(
            name: "KernelTests",
            dependencies: [
                "Netlink", "Namespaces", "Firewall", "CNI", "BerthSupport", "JSON", "Addressing", "Proxy", "Reactor",
            ],
            swiftSettings: strict),
    ]
)
