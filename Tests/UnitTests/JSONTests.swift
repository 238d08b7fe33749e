import JSON
import Testing

@Suite struct JSONTests {
    @Test func parsesEveryKindAndKeepsKeyOrder() throws {
        let doc = try JSON.parse(#"{"b": 1, "a": [true, false, null, -2.5e3, "x\u00e9\n"], "c": {}}"#)
        #expect(doc.objectValue?.keys == ["b", "a", "c"])
        #expect(doc["b"] == .int(1))
        #expect(doc["a"] == [true, false, nil, .double(-2500), "xé\n"])
        #expect(doc["c"] == .object(JSONObject()))
    }

    @Test func surrogatePairsAndEscapes() throws {
        #expect(try JSON.parse(#""\ud83d\ude00 \" \\ \/ \b\f\r\t""#) == .string("😀 \" \\ / \u{8}\u{c}\r\t"))
    }

    @Test func duplicateKeysKeepTheLast() throws {
        #expect(try JSON.parse(#"{"a":1,"a":2}"#)["a"] == .int(2))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\" 1}", "01", "1.", "-", "tru", "\"abc", "\"\u{01}\"", "{} x", "[1 2]", "\"\\x\"", "1e",
    ])
    func rejectsMalformedDocuments(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(text) }
    }

    @Test func refusesDeepNesting() {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        #expect(throws: JSONSyntaxError.self) { try JSON.parse(deep) }
    }

    @Test func serializationRoundTrips() throws {
        let doc: JSON = ["name": "net\"1", "n": 5, "f": 1.5, "list": [1, "two", nil], "ok": true, "ctl": "\u{1}"]
        #expect(doc.compactString == #"{"name":"net\"1","n":5,"f":1.5,"list":[1,"two",null],"ok":true,"ctl":"\u0001"}"#)
        #expect(try JSON.parse(doc.compactBytes) == doc)
        #expect(try JSON.parse(doc.prettyBytes) == doc)
    }

    @Test func prettyPrintsWithFourSpaces() {
        let doc: JSON = ["a": [1], "b": [:]]
        #expect(doc.prettyString == "{\n    \"a\": [\n        1\n    ],\n    \"b\": {}\n}")
    }

    @Test func largeIntegersStayExact() throws {
        #expect(try JSON.parse("9007199254740993") == .int(9_007_199_254_740_993))
        #expect(try JSON.parse("1e400").doubleValue == .infinity)
    }

    @Test func fieldsNameTheWrongField() throws {
        let doc = try JSON.parse(#"{"ipam": {"ranges": [[{"subnet": 5}]]}, "mtu": "x", "flag": null}"#)
        let fields = try JSONFields(doc)
        let ipam = try #require(try fields.object("ipam"))
        let ranges = try #require(try ipam.array("ranges"))
        let set = try JSONFields(ranges[0].arrayValue![0], path: "ipam.ranges[0][0]")
        #expect(throws: JSONFieldError(path: "ipam.ranges[0][0].subnet", problem: "expected a string, found a number")) {
            _ = try set.string("subnet")
        }
        #expect(throws: JSONFieldError(path: "mtu", problem: "expected an integer, found a string")) {
            _ = try fields.int("mtu")
        }
        #expect(try fields.bool("flag") == nil)
        #expect(throws: JSONFieldError(path: "name", problem: "is required")) { _ = try fields.requiredString("name") }
    }

    @Test func intRangeIsChecked() throws {
        let fields = try JSONFields(try JSON.parse(#"{"mtu": 70000}"#))
        #expect(throws: JSONFieldError.self) { _ = try fields.int("mtu", in: 68...65535) }
    }
}
