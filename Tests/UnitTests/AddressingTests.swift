import Addressing
import Testing

@Suite struct AddressingTests {
    @Test func ipv4ParsingIsStrict() {
        #expect(IPv4Address("10.0.0.1")?.value == 0x0A00_0001)
        for bad in ["10.0.0", "10.0.0.256", "010.0.0.1", "1.2.3.4.5", "a.b.c.d", "", "1..2.3"] {
            #expect(IPv4Address(bad) == nil, "\(bad)")
        }
    }

    @Test func ipv6ParsesAndPrintsCanonically() throws {
        let a = try #require(IPv6Address("FD00:0:0:0:0:0:0:1"))
        #expect(a.description == "fd00::1")
        #expect(IPAddress("::ffff:1.2.3.4")?.isIPv6 == true)
        #expect(IPv6Address("fe80::1")?.isLinkLocal == true)
        #expect(IPv6Address("fd00::1::2") == nil)
    }

    @Test func networksMaskAndContain() throws {
        let n = try #require(IPNetwork("10.88.3.7/16"))
        #expect(n.network.description == "10.88.0.0/16")
        #expect(n.mask.description == "255.255.0.0")
        #expect(n.last.description == "10.88.255.255")
        #expect(n.contains(IPAddress("10.88.200.1")!))
        #expect(!n.contains(IPAddress("10.89.0.1")!))
        #expect(!n.contains(IPAddress("fd00::1")!))
        #expect(n.size == 65536)
        let v6 = try #require(IPNetwork("fd00:1::5/64"))
        #expect(v6.network.description == "fd00:1::/64")
        #expect(v6.last.description == "fd00:1::ffff:ffff:ffff:ffff")
        #expect(IPNetwork("10.0.0.0/33") == nil)
        #expect(IPNetwork("10.0.0.0/") == nil)
        #expect(IPNetwork("0.0.0.0/0")?.contains(IPAddress("1.2.3.4")!) == true)
    }

    @Test func overlapDetection() {
        let a = IPNetwork("10.0.0.0/16")!, b = IPNetwork("10.0.128.0/24")!, c = IPNetwork("10.1.0.0/16")!
        #expect(a.overlaps(b) && b.overlaps(a))
        #expect(!a.overlaps(c))
    }

    @Test func arithmeticStaysInFamily() {
        #expect(IPAddress("10.0.0.255")!.advanced(by: 1)?.description == "10.0.1.0")
        #expect(IPAddress("255.255.255.255")!.advanced(by: 1) == nil)
        #expect(IPAddress("0.0.0.0")!.advanced(by: -1) == nil)
        #expect(IPAddress("fd00::ffff")!.advanced(by: 1)?.description == "fd00::1:0")
    }

    @Test func macAddresses() {
        #expect(MACAddress("AA-bb-cc-00-11-22")?.description == "aa:bb:cc:00:11:22")
        #expect(MACAddress("aa:bb:cc:00:11") == nil)
        #expect(MACAddress("01:00:5e:00:00:01")?.isMulticast == true)
    }
}
