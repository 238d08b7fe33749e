import Addressing
import DNS
import Testing

/// The server's answers computed without sockets: Zone + Responder.
@Suite struct DNSZoneTests {
    let zone = Zone(networks: [Fixtures.networkA, Fixtures.networkB], searchDomain: "dns.podman")

    func ask(_ query: DNSMessage, from client: String, on listener: String, stream: Bool = false) -> (DNSMessage?, ForwardRequest?) {
        let responder = Responder()
        defer { responder.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 65535, alignment: 8)
        defer { out.deallocate() }
        let bytes = query.encoded()
        let disposition = bytes.withUnsafeBytes {
            responder.respond(to: $0, from: IPAddress(client)!, listener: IPAddress(listener)!, zone: zone, stream: stream, into: out)
        }
        switch disposition {
        case .reply(let n): return (try? DNSMessage(parsing: Array(UnsafeRawBufferPointer(rebasing: out[0..<n]))), nil)
        case .forward(let request): return (nil, request)
        case .drop: return (nil, nil)
        }
    }

    func addresses(_ message: DNSMessage?) -> Set<String> {
        Set((message?.answers ?? []).compactMap {
            switch $0.data {
            case .a(let a): a.description
            case .aaaa(let a): a.description
            case .ptr(let n): n.description
            default: nil
            }
        })
    }

    @Test func namesAliasesDomainsAndPTR() throws {
        let a = "10.89.0.1", client = "10.89.0.6"
        for qname in ["web1", "WWW", "web1.example.test", "www.dns.podman"] {
            let (reply, _) = ask(.query(id: 7, name: name(qname), type: .a), from: client, on: a)
            #expect(reply?.rcode == .noError && reply?.isAuthoritative == true, "\(qname)")
            #expect(addresses(reply) == ["10.89.0.5"], "\(qname)")
            #expect(reply?.id == 7)
            #expect(reply?.questions.first?.name.description == name(qname).description)  // case kept
        }
        #expect(addresses(ask(.query(id: 1, name: name("web1"), type: .aaaa), from: client, on: a).0) == ["fd89::5"])
        let ptr = ask(.query(id: 1, name: DNSName(reverseOf: IPAddress("10.89.0.5")!), type: .ptr), from: client, on: a).0
        #expect(addresses(ptr) == ["web1.example.test.", "www.example.test."])
        // A name without AAAA: NOERROR, no answers (NODATA).
        let nodata = ask(.query(id: 1, name: name("db"), type: .aaaa), from: client, on: a).0
        #expect(nodata?.rcode == .noError && nodata?.answers.isEmpty == true)
        // Unknown names under the network's domain are NXDOMAIN here, never forwarded.
        #expect(ask(.query(id: 1, name: name("nosuch.example.test"), type: .a), from: client, on: a).0?.rcode == .nameError)
        #expect(ask(.query(id: 1, name: name("nosuch.dns.podman"), type: .a), from: client, on: a).0?.rcode == .nameError)
        // Everything else is forwarded, with the question's details.
        let (_, forward) = ask(.query(id: 1, name: name("example.com"), type: .mx, edns: 4096), from: client, on: a)
        #expect(forward?.type == RecordType.mx.rawValue && forward?.ednsSize == 4096 && forward?.upstreams == nil)
    }

    @Test func clientsSeeOnlyTheirNetworks() {
        // A container on B asking B's gateway does not see A's names, and vice versa.
        #expect(ask(.query(id: 1, name: name("web1"), type: .a), from: "10.90.0.5", on: "10.90.0.1").1 != nil)
        #expect(ask(.query(id: 1, name: name("web1.dns.podman"), type: .a), from: "10.90.0.5", on: "10.90.0.1").0?.rcode == .nameError)
        #expect(ask(.query(id: 1, name: name("api"), type: .a), from: "10.89.0.5", on: "10.89.0.1").1 != nil)
        // Even asking A's gateway, B's container sees B's names (its own networks decide).
        #expect(addresses(ask(.query(id: 1, name: name("api"), type: .a), from: "10.90.0.5", on: "10.89.0.1").0) == ["10.90.0.5"])
        // A container on both sees both, and its name resolves to both addresses.
        #expect(addresses(ask(.query(id: 1, name: name("web1"), type: .a), from: "10.90.0.7", on: "10.90.0.1").0) == ["10.89.0.5"])
        #expect(addresses(ask(.query(id: 1, name: name("bridge1"), type: .a), from: "10.90.0.7", on: "10.90.0.1").0) == ["10.89.0.7", "10.90.0.7"])
        // Unknown clients see the network of the address they asked.
        #expect(addresses(ask(.query(id: 1, name: name("api"), type: .a), from: "10.90.0.200", on: "10.90.0.1").0) == ["10.90.0.5"])
        // B's own upstreams go with its forwarded questions.
        #expect(ask(.query(id: 1, name: name("example.com"), type: .a), from: "10.90.0.5", on: "10.90.0.1").1?.upstreams == [IPAddress("192.0.2.99")!])
        // Not a configured address: silence.
        let (reply, forward) = ask(.query(id: 1, name: name("web1"), type: .a), from: "10.89.0.5", on: "10.99.0.1")
        #expect(reply == nil && forward == nil)
    }

    @Test func ednsTruncationAndErrors() {
        let a = "10.89.0.1", client = "10.89.0.5"
        let withOPT = ask(.query(id: 1, name: name("web1"), type: .a, edns: 4096), from: client, on: a).0
        #expect(withOPT?.opt?.rclass == Responder.advertisedUDPSize)
        #expect(ask(.query(id: 1, name: name("web1"), type: .a), from: client, on: a).0?.opt == nil)
        // Unsupported EDNS version: BADVERS.
        var v1 = DNSMessage.query(id: 1, name: name("web1"), type: .a)
        v1.additionals = [DNSRecord(name: .root, type: .opt, rclass: 1232, ttl: 0x0001_0000, data: .raw([]))]
        let badvers = ask(v1, from: client, on: a).0
        #expect(badvers?.opt.map { $0.ttl >> 24 } == 1)
        // Other opcodes: NOTIMP; two questions: FORMERR; responses: dropped.
        var notify = DNSMessage.query(id: 1, name: name("web1"), type: .a)
        notify.flags = 4 << 11
        #expect(ask(notify, from: client, on: a).0?.rcode == .notImplemented)
        var two = DNSMessage.query(id: 1, name: name("web1"), type: .a)
        two.questions.append(two.questions[0])
        #expect(ask(two, from: client, on: a).0?.rcode == .formatError)
        var response = DNSMessage.query(id: 1, name: name("web1"), type: .a)
        response.isResponse = true
        let (dropped, notForwarded) = ask(response, from: client, on: a)
        #expect(dropped == nil && notForwarded == nil)
    }

    @Test func bigAnswersAreTruncatedOverUDPOnly() {
        var containers: [ContainerEntry] = []
        for i in 1...60 {
            containers.append(ContainerEntry(id: "c\(i)", ipv4: [IPv4Address(10, 91, 0, UInt8(i))], names: ["many"]))
        }
        let big = Zone(networks: [NetworkFile(name: "big", gateways: [IPAddress("10.91.0.254")!], containers: containers)], searchDomain: nil)
        let responder = Responder()
        defer { responder.deallocate() }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: 65535, alignment: 8)
        defer { out.deallocate() }
        for (stream, edns) in [(false, nil), (false, UInt16(4096)), (true, nil)] as [(Bool, UInt16?)] {
            let bytes = DNSMessage.query(id: 9, name: name("many"), type: .a, edns: edns).encoded()
            guard case .reply(let n) = bytes.withUnsafeBytes({
                responder.respond(to: $0, from: IPAddress("10.91.0.1")!, listener: IPAddress("10.91.0.254")!, zone: big, stream: stream, into: out)
            }), let reply = try? DNSMessage(parsing: Array(UnsafeRawBufferPointer(rebasing: out[0..<n]))) else {
                Issue.record("no reply")
                continue
            }
            let expectTruncated = !stream && edns == nil
            #expect(reply.isTruncated == expectTruncated)
            #expect(reply.answers.count == (expectTruncated ? 0 : 60))
        }
    }

    @Test func cacheAgesTTLsAndExpires() throws {
        var cache = ResponseCache(capacity: 4)
        var message = DNSMessage.query(id: 1, name: name("example.com"), type: .a)
        message.isResponse = true
        message.answers = [DNSRecord(name: name("example.com"), type: .a, ttl: 100, data: .a(IPv4Address("192.0.2.7")!))]
        let key = ResponseCache.Key(name: name("example.com").wireKey, type: 1, rclass: 1, upstreams: 0, edns: false, dnssecOK: false)
        cache.store(message.encoded(), for: key, now: 0)
        let hit = try #require(cache.lookup(key, id: 0xBEEF, now: 30_000_000_000) as [UInt8]?)
        let parsed = try DNSMessage(parsing: hit)
        #expect(parsed.id == 0xBEEF)
        #expect(parsed.answers.first?.ttl == 70)
        #expect(cache.lookup(key, id: 1, now: 100_000_000_001) == nil)
        // SERVFAIL and truncated answers are not kept.
        message.rcode = .serverFailure
        cache.store(message.encoded(), for: key, now: 0)
        #expect(cache.lookup(key, id: 1, now: 1) == nil)
    }

    @Test func configurationFilesRoundTrip() throws {
        let text = "10.89.0.1,fd89::1 192.0.2.1,192.0.2.2 domain=example.test\nabc 10.89.0.5  Web1,www\ndef 10.89.0.6,10.89.0.16 fd89::6 db 1.1.1.1\n"
        let file = try NetworkFile(parsing: text, fileName: "neta%int")
        #expect(file.name == "neta" && file.isInternal)
        #expect(file.gateways.map(\.description) == ["10.89.0.1", "fd89::1"])
        #expect(file.upstreams.count == 2 && file.domain == "example.test")
        #expect(file.containers[0].names == ["web1", "www"])
        #expect(file.containers[1].ipv4.count == 2 && file.containers[1].dnsServers == [IPAddress("1.1.1.1")!])
        #expect(try NetworkFile(parsing: file.text, fileName: file.fileName) == file)
        // aardvark-dns's own test fixture shape (netavark writes these).
        let netavark = "10.88.0.1\n7ac6d0e5fa84 10.88.0.2  condescendingnash,7ac6d0e5fa84\n"
        #expect(try NetworkFile(parsing: netavark, fileName: "podman").containers.first?.names == ["condescendingnash", "7ac6d0e5fa84"])
        for bad in ["", "not-an-ip\n", "10.0.0.1\nabc 10.0.0.999  x\n", "10.0.0.1\nabc 10.0.0.2 x\n", "10.0.0.1\nabc 10.0.0.2  \n"] {
            #expect(throws: DNSConfigError.self, "\(bad)") { try NetworkFile(parsing: bad, fileName: "n") }
        }
        #expect(!ConfigDirectory.isNetworkFile("aardvark.pid"))
        #expect(!ConfigDirectory.isNetworkFile("neta.tmp.1234"))
        #expect(!ConfigDirectory.isNetworkFile(".berth-dns.lock"))
        #expect(ConfigDirectory.isNetworkFile("podman"))
    }

    @Test func commandLineIsAardvarks() throws {
        let command = try BerthDNSCommand(arguments: ["--config", "/run/x", "-p", "53", "run"])
        #expect(command.action == .run && command.options.configDirectory == "/run/x" && command.options.port == 53)
        let other = try BerthDNSCommand(arguments: ["-c", "/d", "--port=5353", "-f", ".example", "--upstream-timeout", "200", "--foreground", "run"])
        #expect(other.options.searchDomain == "example" && other.options.upstreamTimeout == .milliseconds(200) && other.foreground)
        #expect(throws: BerthDNSCommand.UsageError.self) { try BerthDNSCommand(arguments: ["-p", "x", "run"]) }
        #expect(throws: BerthDNSCommand.UsageError.self) { try BerthDNSCommand(arguments: ["-c", "/d"]) }
    }
}
