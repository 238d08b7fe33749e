import Addressing
import Proxy
import Testing

@Suite struct ProxyOptionsTests {
    @Test func dockerProxyFlagsInGoSyntax() throws {
        // What dockerd passes, and the same with = and double dashes.
        for args in [
            ["-proto", "tcp", "-host-ip", "0.0.0.0", "-host-port", "8080", "-container-ip", "172.17.0.2", "-container-port", "80"],
            ["--proto=tcp", "--host-ip=0.0.0.0", "-host-port=8080", "--container-ip", "172.17.0.2", "-container-port=80"],
        ] {
            let options = try ProxyOptions.parse(args)
            #expect(options.mappings.map(\.description) == ["tcp:0.0.0.0:8080:172.17.0.2:80"])
            #expect(!options.useListenFD)
        }
        let udp = try ProxyOptions.parse(["-proto", "udp", "-host-ip", "::1", "-host-port", "53", "-container-ip",
                                          "fd00::2", "-container-port", "5353", "-use-listen-fd"])
        #expect(udp.mappings.map(\.description) == ["udp:[::1]:53:[fd00::2]:5353"])
        #expect(udp.useListenFD)
        // -proto defaults to tcp; no -host-ip means all IPv6 addresses, as docker-proxy.
        let bare = try ProxyOptions.parse(["-host-port", "80", "-container-ip", "10.0.0.2", "-container-port", "80"])
        #expect(bare.mappings.map(\.description) == ["tcp:[::]:80:10.0.0.2:80"])
    }

    @Test func mappingSpecsRoundTrip() throws {
        for spec in ["tcp:127.0.0.1:8080:172.17.0.2:80", "udp:[::1]:5353:[fd00::2]:53", "tcp:[::]:443:10.0.0.9:8443"] {
            #expect(try Mapping(spec: spec).description == spec)
        }
        let options = try ProxyOptions.parse([
            "--mapping", "tcp:127.0.0.1:8080:172.17.0.2:80", "--mapping=udp:[::1]:53:[fd00::2]:53", "--max-connections", "10",
            "--max-udp-flows", "7", "--udp-timeout", "1.5", "--drain-timeout", "0", "--log-level", "debug",
        ])
        #expect(options.mappings.count == 2)
        #expect(options.maxConnections == 10 && options.maxUDPFlows == 7)
        #expect(options.udpTimeout == .milliseconds(1500) && options.drainTimeout == .zero)
    }

    @Test func mappingsFileWithCommentsAndLineNumbersInErrors() throws {
        let text = "# published ports\n\ntcp:127.0.0.1:8080:172.17.0.2:80  # web\n  udp:[::1]:53:[fd00::2]:53\n"
        #expect(try parseMappingsFile(text, name: "m").map(\.description) == [
            "tcp:127.0.0.1:8080:172.17.0.2:80", "udp:[::1]:53:[fd00::2]:53",
        ])
        #expect(throws: ProxyError.self) { try parseMappingsFile("tcp:1.2.3.4:80:5.6.7.8:80\nbad\n", name: "m") }
        do {
            _ = try parseMappingsFile("tcp:1.2.3.4:80:5.6.7.8:80\ntcp:1.2.3.4:99999:5.6.7.8:80\n", name: "m")
        } catch {
            #expect(error.description.hasPrefix("m:2: mapping 'tcp:1.2.3.4:99999:5.6.7.8:80': host port '99999'"))
        }
    }

    @Test func badInputNamesTheFlag() {
        func error(_ args: [String]) -> String {
            do {
                _ = try ProxyOptions.parse(args)
                return "no error"
            } catch {
                return error.description
            }
        }
        let base = ["-host-ip", "127.0.0.1", "-host-port", "80", "-container-ip", "10.0.0.2", "-container-port", "80"]
        #expect(error(base + ["-proto", "sctp"]).hasPrefix("unsupported protocol sctp"))
        #expect(error(base + ["-proto", "icmp"]).hasPrefix("unsupported protocol icmp"))
        #expect(error(base + ["-host-port", "0"]) == "invalid -host-port '0': use 1-65535")
        #expect(error(base + ["-host-ip", "localhost"]) == "invalid -host-ip 'localhost': not an IP address")
        #expect(error(["-host-port", "80", "-container-port", "80"]) == "missing -container-ip")
        #expect(error(base + ["-bogus"]).hasPrefix("flag provided but not defined: -bogus"))
        #expect(error(base + ["-container-port"]) == "flag needs an argument: -container-port")
        #expect(error(base + ["extra"]).hasPrefix("unexpected argument 'extra'"))
        #expect(error([]).hasPrefix("no mapping"))
        #expect(error(["--mapping", "tcp:127.0.0.1:80:10.0.0.2:80", "--mapping", "tcp:127.0.0.1:80:10.0.0.3:80"])
            .contains("both use tcp:127.0.0.1:80"))
        #expect(error(["-use-listen-fd", "--mapping", "tcp:127.0.0.1:80:10.0.0.2:80"]).hasPrefix("-use-listen-fd needs"))
        #expect(error(base + ["--udp-timeout", "-1"]).hasPrefix("invalid value '-1' for --udp-timeout"))
    }
}
