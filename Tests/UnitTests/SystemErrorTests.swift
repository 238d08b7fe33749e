import BerthSupport
import Testing

@Suite struct SystemErrorTests {
    @Test func everyErrnoHasADescription() {
        for code in Int32(1)...133 {
            #expect(!errnoDescription(code).isEmpty)
        }
        #expect(errnoDescription(2) == "No such file or directory (ENOENT)")
        #expect(SystemError("open", object: "/x", errno: 95).description == "open /x: Operation not supported (EOPNOTSUPP)")
    }
}
