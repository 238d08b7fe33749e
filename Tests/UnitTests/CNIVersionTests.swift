import CNI
import JSON
import Testing

@Suite struct CNIVersionTests {
    @Test func parsesOnlyThreePartVersions() {
        #expect(CNIVersion("1.0.0") == .v1_0_0)
        #expect(CNIVersion("0.3.1") == .v0_3_1)
        #expect(CNIVersion("10.20.30") == CNIVersion(10, 20, 30))
        for bad in ["", "1", "1.0", "1.0.0.0", "a.b.c", "1..0", "1.0.", "-1.0.0", "1.0.0-rc1", " 1.0.0", "+1.0.0"] {
            #expect(CNIVersion(bad) == nil, "\(bad)")
        }
    }

    @Test func ordersNumerically() {
        #expect(CNIVersion(1, 2, 34) > CNIVersion(1, 2, 14))
        #expect(CNIVersion(2, 5, 4) > CNIVersion(2, 4, 4))
        #expect(CNIVersion(0, 10, 0) > CNIVersion(0, 4, 0))
        #expect(CNIVersion.v0_4_0 > .v0_3_1)
        #expect(CNIVersion.all == CNIVersion.all.sorted())
        #expect(CNIVersion.all.map(\.description) == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
        #expect(CNIVersion.latest == .v1_1_0)
        #expect(CNIVersion.implied == .v0_1_0)
    }

    @Test func featureFloors() {
        #expect(!CNIVersion.v0_3_1.supportsCheck)
        #expect(CNIVersion.v0_4_0.supportsCheck)
        #expect(!CNIVersion.v1_0_0.supportsStatusAndGC)
        #expect(CNIVersion.v1_1_0.supportsStatusAndGC)
        #expect(!CNIVersion(0, 5, 0).isKnown)
    }

    @Test func versionInfoEncodesAsTheReferenceDoes() {
        let info = VersionInfo(supporting: CNIVersion.all)
        #expect(
            info.json.compactString
                == #"{"cniVersion":"1.1.0","supportedVersions":["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}"#)
    }

    @Test func versionInfoDecodes() throws {
        let info = try VersionInfo(decoding: bytes(#"{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}"#))
        #expect(info.cniVersion == "1.0.0")
        #expect(info.supports("0.4.0") && !info.supports("0.3.1"))
        // A plugin from before supportedVersions existed.
        #expect(try VersionInfo(decoding: bytes(#"{"cniVersion":"0.2.0"}"#)).supportedVersions == ["0.1.0", "0.2.0"])
    }

    @Test func versionInfoDecodingErrors() {
        for (text, message) in [
            ("{{{", "decoding version info:"),
            (#"{"supportedVersions":["1.0.0"]}"#, "decoding version info: missing field cniVersion"),
            (#"{"cniVersion":"1.0.0"}"#, "decoding version info: missing field supportedVersions"),
            (#"{"cniVersion":1}"#, "decoding version info: cniVersion: expected a string"),
        ] {
            #expect {
                try VersionInfo(decoding: bytes(text))
            } throws: { error in
                guard let error = error as? CNIError else { return false }
                return error.code == .decodingFailure && error.msg.hasPrefix(message)
            }
        }
    }
}
