import BerthSupport
import Glibc
import TestSupport
import Testing

@Suite struct SupportTests {
    @Test func base64MatchesRFC4648Vectors() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
        #expect(Base64.decode("Zm9v!") == nil)
        #expect(Base64.decode("Zg=") == nil)
    }

    @Test func subprocessFeedsStdinAndCapturesBothStreams() throws {
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 300_000)
        let out = try Subprocess.run("/bin/sh", arguments: ["-c", "cat; echo err >&2; exit 3"], environment: [:], input: big)
        #expect(out.status == 3)
        #expect(out.stdout == big)
        #expect(out.stderr == Array("err\n".utf8))
    }

    @Test func subprocessReportsExecFailure() {
        #expect(throws: SystemError.self) {
            _ = try Subprocess.run("/nonexistent/program", environment: [:])
        }
    }

    @Test func atomicWriteReplacesWholeFile() throws {
        let dir = "/tmp/berth-unit-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Files.makeDirectories(dir + "/a/b")
        defer { _ = try? Subprocess.run("/bin/rm", arguments: ["-rf", dir], environment: [:]) }
        let path = dir + "/a/b/file"
        try Files.writeAtomically(path, Array("one".utf8))
        try Files.writeAtomically(path, Array("two".utf8))
        #expect(try Files.readText(path) == "two")
        #expect(try Files.list(dir + "/a/b") == ["file"])
    }
}
