import Addressing
import DNS
import Testing

/// A small seeded generator, so fuzz runs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func name(_ text: String) -> DNSName { DNSName(text)! }

@Suite struct DNSMessageTests {
    @Test func roundTripWithCompression() throws {
        var message = DNSMessage.query(id: 0x1234, name: name("web1.dns.podman"), type: .a, edns: 1232)
        message.isResponse = true
        message.answers = [
            DNSRecord(name: name("web1.dns.podman"), type: .a, ttl: 60, data: .a(IPv4Address("10.88.0.5")!)),
            DNSRecord(name: name("web1.dns.podman"), type: .cname, ttl: 60, data: .cname(name("www.dns.podman"))),
            DNSRecord(name: name("5.0.88.10.in-addr.arpa"), type: .ptr, ttl: 5, data: .ptr(name("web1.dns.podman"))),
        ]
        message.authorities = [
            DNSRecord(
                name: name("dns.podman"), type: .soa, ttl: 30,
                data: .soa(mname: name("ns.dns.podman"), rname: name("admin.dns.podman"), serial: 1, refresh: 2, retry: 3, expire: 4, minimum: 5))
        ]
        let bytes = message.encoded()
        #expect(try DNSMessage(parsing: bytes) == message)
        // The answer's owner is a pointer to the question's name at offset 12.
        let questionEnd = 12 + name("web1.dns.podman").wire.count + 4
        #expect(Array(bytes[questionEnd..<questionEnd + 2]) == [0xC0, 0x0C])
        // Compression saves the repeated suffixes.
        let uncompressedNames = message.answers.count * 17 + 3 * 17
        #expect(bytes.count < 12 + uncompressedNames + 100)
        #expect(try DNSMessage(parsing: bytes).opt?.rclass == 1232)
    }

    @Test func namesAndReverse() {
        #expect(name("Web1.DNS.podman.") == name("web1.dns.podman"))
        #expect(name("a.b").description == "a.b.")
        #expect(DNSName(String(repeating: "a", count: 64)) == nil)
        #expect(DNSName(Array(repeating: "abcdefghi", count: 26).joined(separator: ".")) == nil)  // 260 bytes
        #expect(DNSName(reverseOf: IPAddress("10.88.0.5")!).description == "5.0.88.10.in-addr.arpa.")
        #expect(DNSName(reverseOf: IPAddress("fd00::1")!).description.hasPrefix("1.0.0.0.0.0.0.0"))
        #expect(DNSName(reverseOf: IPAddress("fd00::1")!).description.hasSuffix("0.0.d.f.ip6.arpa."))
        #expect(name("x.dns.podman").isSubdomain(of: name("dns.podman")))
        #expect(!name("xdns.podman").isSubdomain(of: name("dns.podman")))
    }

    static let malformed: [(String, [UInt8])] = [
        ("empty", []),
        ("short header", [0, 1, 0, 0, 0, 1]),
        ("question count without question", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
        ("pointer to itself", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1]),
        ("forward pointer", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 14, 1, 0x61, 0, 0, 1, 0, 1]),
        ("pointer loop", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0x61, 0xC0, 12, 0, 1, 0, 1]),
        ("extended label type", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x41, 0x61, 0, 0, 1, 0, 1]),
        ("label past the end", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0x61, 0x62]),
        ("oversized counts", [0, 1, 1, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 1, 0, 1]),
        ("record data past the end", [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 9, 1, 2]),
        ("A record of 3 bytes", [0, 1, 0x81, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 3, 1, 2, 3]),
    ]

    @Test(arguments: malformed)
    func malformedIsAnErrorNeverACrash(_ label: String, _ bytes: [UInt8]) {
        #expect(throws: DNSParseError.self, "\(label)") { try DNSMessage(parsing: bytes) }
    }

    @Test func nameLongerThan255IsRejected() {
        var bytes: [UInt8] = [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        for _ in 0..<5 { bytes += [63] + Array(repeating: 0x61, count: 63) }
        bytes += [0, 0, 1, 0, 1]
        #expect(throws: DNSParseError.self) { try DNSMessage(parsing: bytes) }
    }

    /// Seeded mutations of valid messages: the parser and the server's fast path either read
    /// them or refuse them, and never trap. Bounded so it runs in well under a second.
    @Test func fuzzParserAndResponder() throws {
        var rng = SplitMix64(state: 0xB3A7_0DD5)
        let zone = Zone(networks: [Fixtures.networkA, Fixtures.networkB], searchDomain: "dns.podman")
        let responder = Responder()
        defer { responder.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 65535, alignment: 8)
        defer { out.deallocate() }
        var seeds: [[UInt8]] = [
            DNSMessage.query(id: 1, name: name("web1"), type: .a).encoded(),
            DNSMessage.query(id: 2, name: name("web1.dns.podman"), type: .aaaa, edns: 4096).encoded(),
            DNSMessage.query(id: 3, name: DNSName(reverseOf: IPAddress("10.89.0.5")!), type: .ptr).encoded(),
        ]
        var response = DNSMessage.query(id: 4, name: name("a.b.c"), type: .a)
        response.answers = [DNSRecord(name: name("a.b.c"), type: .cname, ttl: 1, data: .cname(name("b.c")))]
        seeds.append(response.encoded())
        var parsed = 0, answered = 0
        for round in 0..<20_000 {
            var bytes = seeds[round % seeds.count]
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                switch Int.random(in: 0..<5, using: &rng) {
                case 0: if !bytes.isEmpty { bytes[Int.random(in: 0..<bytes.count, using: &rng)] = UInt8.random(in: 0...255, using: &rng) }
                case 1: if !bytes.isEmpty { bytes.removeLast(Int.random(in: 0...min(bytes.count, 8), using: &rng)) }
                case 2: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: Int.random(in: 0...bytes.count, using: &rng))
                case 3: if bytes.count > 13 { bytes[Int.random(in: 12..<bytes.count, using: &rng)] = 0xC0 | UInt8.random(in: 0...0x3F, using: &rng) }
                default: if bytes.count >= 12 { bytes[Int.random(in: 4..<12, using: &rng)] = 0xFF }
                }
            }
            if (try? DNSMessage(parsing: bytes)) != nil { parsed += 1 }
            let disposition = bytes.withUnsafeBytes {
                responder.respond(
                    to: $0, from: IPAddress("10.89.0.5")!, listener: IPAddress("10.89.0.1")!, zone: zone, stream: round % 2 == 0,
                    into: out)
            }
            if case .reply(let length) = disposition {
                answered += 1
                // Every reply the server would send is itself a well-formed message.
                let reply = Array(UnsafeRawBufferPointer(rebasing: out[0..<length]))
                #expect((try? DNSMessage(parsing: reply)) != nil, "reply to \(bytes) does not parse: \(reply)")
            }
        }
        #expect(parsed > 0 && answered > 0)
    }
}

enum Fixtures {
    static let networkA = NetworkFile(
        name: "neta", gateways: [IPAddress("10.89.0.1")!, IPAddress("fd89::1")!], domain: "example.test",
        containers: [
            ContainerEntry(id: "aaa1", ipv4: [IPv4Address("10.89.0.5")!], ipv6: [IPv6Address("fd89::5")!], names: ["web1", "www"]),
            ContainerEntry(id: "aaa2", ipv4: [IPv4Address("10.89.0.6")!], names: ["db"]),
            ContainerEntry(id: "both", ipv4: [IPv4Address("10.89.0.7")!], names: ["bridge1"]),
        ])
    static let networkB = NetworkFile(
        name: "netb", gateways: [IPAddress("10.90.0.1")!], upstreams: [IPAddress("192.0.2.99")!],
        containers: [
            ContainerEntry(id: "bbb1", ipv4: [IPv4Address("10.90.0.5")!], names: ["api"]),
            ContainerEntry(id: "both", ipv4: [IPv4Address("10.90.0.7")!], names: ["bridge1"]),
        ])
}
