import BerthSupport
import Glibc
import Netlink
import Testing

/// How a reply is followed across datagrams, on captured and hand-built bytes (no socket).
/// iproute2's captures carry sequence 0x6b0c0ad6 and its port ids.
@Suite struct ReplyCollectorTests {
    let sequence: UInt32 = 0x6b0c_0ad6

    @Test func multiPartDumpEndsAtDone() throws {
        var collector = ReplyCollector(sequence: sequence, portID: 0x3156, isDump: true)
        #expect(try collector.consume(Captured.routeDump[...]) == false)
        #expect(try collector.consume(Captured.routeDumpDone[...]) == true)
        #expect(collector.messages.count == 2)
        #expect(!collector.interrupted)
    }

    @Test func repliesToOtherRequestsAreSkipped() throws {
        var collector = ReplyCollector(sequence: sequence - 1, portID: 0x3156, isDump: true)
        #expect(try collector.consume(Captured.routeDump[...]) == false)
        #expect(try collector.consume(Captured.routeDumpDone[...]) == false)
        #expect(collector.messages.isEmpty)
        var otherPort = ReplyCollector(sequence: sequence, portID: 0x9999, isDump: true)
        #expect(try otherPort.consume(Captured.routeDumpDone[...]) == false)
    }

    @Test func interruptedDumpIsNoticed() throws {
        var bytes = Captured.routeDump
        bytes[6] |= 0x10  // NLM_F_DUMP_INTR on the first message
        var collector = ReplyCollector(sequence: sequence, portID: 0x3156, isDump: true)
        _ = try collector.consume(bytes[...])
        #expect(try collector.consume(Captured.routeDumpDone[...]))
        #expect(collector.interrupted)
    }

    @Test func getReplyThenAcknowledgement() throws {
        var collector = ReplyCollector(sequence: sequence, portID: 0x313e, isDump: false)
        #expect(try collector.consume(Captured.linkV0[...]) == false)
        // NLMSG_ERROR with error 0, capped (0x100), same sequence and port id.
        let ack = hex("""
            24 00 00 00  02 00  00 01  d6 0a 0c 6b  3e 31 00 00
            00 00 00 00
            20 00 00 00  12 00  05 00  d6 0a 0c 6b  00 00 00 00
            """)
        #expect(try collector.consume(ack[...]) == true)
        #expect(collector.messages.map(\.type) == [16])
    }

    @Test func negativeAcknowledgementThrowsErrnoAndKernelText() {
        var collector = ReplyCollector(sequence: sequence, portID: 0x315e, isDump: false)
        #expect {
            _ = try collector.consume(Captured.invalidGateway[...])
        } throws: { error in
            let error = error as? SystemError
            return error?.errno == ENETUNREACH && error?.kernelMessage == "Nexthop has invalid gateway"
        }
    }

    @Test func failedDumpReportsTheErrorInDone() {
        // NLMSG_DONE, NLM_F_MULTI | NLM_F_ACK_TLVS, error -EINVAL, NLMSGERR_ATTR_MSG "bad filter".
        let done = hex("""
            24 00 00 00  03 00  02 02  01 00 00 00  07 00 00 00
            ea ff ff ff
            0f 00 01 00  62 61 64 20 66 69 6c 74 65 72 00  00
            """)
        var collector = ReplyCollector(sequence: 1, portID: 7, isDump: true)
        #expect {
            _ = try collector.consume(done[...])
        } throws: { error in
            let error = error as? SystemError
            return error?.errno == EINVAL && error?.kernelMessage == "bad filter"
        }
    }
}
