import Foundation
import Testing

@testable import DTwinContract

@Suite struct UpstreamAnswerTests {
    func classify(_ status: Int, _ body: String) -> DeliveryOutcome {
        UpstreamAnswer.classify(status: status, body: Array(body.utf8))
    }

    @Test func aReplyInA2xxAnswer() {
        #expect(classify(200, #"{"reply": "LIG"}"#) == .delivered(reply: "LIG", note: nil))
        #expect(classify(201, #"{"reply": "ACK", "other": 1}"#) == .delivered(reply: "ACK", note: nil))
    }

    /// `desired` beside (or instead of) `reply` sets the device's twin (issue 19).
    @Test func aDesiredStateInA2xxAnswer() {
        #expect(classify(200, #"{"desired": {"led": true}}"#) == .delivered(reply: nil, note: nil, desired: ["led": .bool(true)]))
        #expect(
            classify(200, #"{"reply": "LIG", "desired": {"period": 60}}"#)
                == .delivered(reply: "LIG", note: nil, desired: ["period": .number(60)]))
        #expect(classify(200, #"{"desired": {}}"#) == .delivered(reply: nil, note: nil), "an empty desired asks for nothing")
        #expect(classify(200, #"{"desired": "led"}"#) == .delivered(reply: nil, note: nil), "desired must be an object")
        #expect(
            UpstreamAnswer.classifyLambdaResult(Array(#"{"statusCode": 200, "body": "{\"desired\": {\"led\": false}}"}"#.utf8))
                == .delivered(reply: nil, note: nil, desired: ["led": .bool(false)]))
    }

    @Test func answersWithoutAReply() {
        #expect(classify(200, "") == .delivered(reply: nil, note: nil))
        #expect(classify(204, "  \n") == .delivered(reply: nil, note: nil))
        #expect(classify(200, #"{"ok": true}"#) == .delivered(reply: nil, note: nil))
        #expect(classify(200, #"{"reply": ""}"#) == .delivered(reply: nil, note: nil))
    }

    @Test func theReplyKeyIsFoundAnywhereInTheBody() {
        #expect(classify(200, #"{"a":1,"reply":"X"}"#) == .delivered(reply: "X", note: nil))
        #expect(classify(200, #""reply""#) == .delivered(reply: nil, note: nil))  // the key alone, a JSON string
        #expect(classify(200, #"{"replyTo": "Y"}"#) == .delivered(reply: nil, note: nil))
        #expect(classify(200, #"{"rep": "Y"}"#) == .delivered(reply: nil, note: nil))
        guard case .delivered(nil, let note?, _) = classify(200, #"""reply": "LIG"}"#) else {
            Issue.record("a broken answer that mentions \"reply\" was not noted")
            return
        }
        #expect(note.contains("not JSON"))
    }

    @Test func unusableAnswersAreDeliveredWithANote() {
        guard case .delivered(nil, let note?, _) = classify(200, "<html>OK</html>") else {
            Issue.record("non-JSON answer not noted")
            return
        }
        #expect(note.contains("not JSON"))
        guard case .delivered(nil, let note2?, _) = classify(200, #"{"reply": 5}"#) else {
            Issue.record("non-string reply not noted")
            return
        }
        #expect(note2.contains("not a string"))
    }

    @Test(arguments: [408, 429, 500, 502, 503, 504])
    func retryable(_ status: Int) {
        guard case .retry(let reason) = classify(status, "busy") else {
            Issue.record("\(status) should be retried")
            return
        }
        #expect(reason.contains("\(status)"))
        #expect(reason.contains("busy"))
    }

    @Test(arguments: [400, 401, 403, 404, 413, 301, 302])
    func permanent(_ status: Int) {
        guard case .reject(let reason) = classify(status, #"{"message": "Forbidden"}"#) else {
            Issue.record("\(status) should be a dead letter")
            return
        }
        #expect(reason.contains("\(status)"))
    }

    @Test func longBodiesAreQuotedShort() {
        guard case .reject(let reason) = classify(400, String(repeating: "z", count: 5000)) else { return }
        #expect(reason.count < 300)
    }

    @Test func lambdaResultShapes() {
        func lambda(_ json: String) -> DeliveryOutcome { UpstreamAnswer.classifyLambdaResult(Array(json.utf8)) }
        #expect(lambda(#"{"statusCode": 200, "body": "{\"reply\": \"LIG\"}"}"#) == .delivered(reply: "LIG", note: nil))
        #expect(lambda(#"{"payload": {"reply": "ACK"}}"#) == .delivered(reply: "ACK", note: nil))
        #expect(lambda(#"{"payload": "{\"reply\": \"ACK\"}"}"#) == .delivered(reply: "ACK", note: nil))
        #expect(lambda(#"{"reply": "X"}"#) == .delivered(reply: "X", note: nil))
        #expect(lambda("null") == .delivered(reply: nil, note: nil))
        guard case .retry = lambda(#"{"statusCode": 502, "body": "bad gateway"}"#) else {
            Issue.record("a proxy 502 should retry")
            return
        }
        guard case .reject = lambda(#"{"statusCode": 404}"#) else {
            Issue.record("a proxy 404 should be a dead letter")
            return
        }
    }
}

@Suite struct DeadLetterTests {
    @Test func jsonCarriesEverythingNeededToRepublish() throws {
        let letter = DeadLetter(topic: "dtwin/a.b/up", payload: [0, 1, 255], reason: "invalid device name", messageId: "X")
        let json = try #require(JSONSerialization.jsonObject(with: Data(letter.jsonBytes())) as? [String: Any])
        #expect(json["topic"] as? String == "dtwin/a.b/up")
        #expect(json["reason"] as? String == "invalid device name")
        #expect(Data(base64Encoded: try #require(json["payload"] as? String)) == Data([0, 1, 255]))
        #expect(try JSONDecoder().decode(DeadLetter.self, from: Data(letter.jsonBytes())).payloadBytes == [0, 1, 255])
        #expect(json["payloadSize"] == nil)
    }

    @Test func anOversizedPayloadIsCarriedInPartWithItsSize() throws {
        let limit = DeadLetter.includedPayloadLimit
        let payload = (0..<(1024 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let letter = DeadLetter(topic: "dtwin/a/up", payload: payload, reason: "too big")
        #expect(letter.payloadBytes == Array(payload.prefix(limit)))
        #expect(letter.payloadSize == payload.count)
        // The point of the cap: the dead letter itself stays well under a 1 MiB broker limit.
        #expect(letter.jsonBytes().count < 270_000)
        let exact = DeadLetter(topic: "dtwin/a/up", payload: Array(payload.prefix(limit)), reason: "r")
        #expect(exact.payloadSize == nil)
        #expect(exact.payloadBytes?.count == limit)
    }
}

@Suite struct BrokerURLTests {
    @Test func parsesTheForms() throws {
        #expect(try BrokerURL(parsing: "mqtt://127.0.0.1:1883") == BrokerURL(host: "127.0.0.1", port: 1883))
        #expect(try BrokerURL(parsing: "mqtt://broker") == BrokerURL(host: "broker", port: 1883))
        #expect(try BrokerURL(parsing: "mqtts://broker") == BrokerURL(tls: true, host: "broker", port: 8883))
        let full = try BrokerURL(parsing: "mqtts://bridge:p%40ss%3Aword@host.example:8884/")
        #expect(full.username == "bridge")
        #expect(full.password == "p@ss:word")
        #expect(full.port == 8884)
        #expect(full.tls)
        #expect(try BrokerURL(parsing: "mqtt://[::1]:1884").host == "::1")
    }

    @Test(arguments: [
        "http://host", "mqtt://", "mqtt://host:0", "mqtt://host:99999", "mqtt://host:x", "mqtt://host/path", "mqtt://:pw@host", "mqtt://u:%zz@host",
    ])
    func rejects(_ text: String) {
        #expect(throws: InvalidBrokerURL.self) { try BrokerURL(parsing: text) }
    }

    @Test func neverShowsThePassword() throws {
        let url = try BrokerURL(parsing: "mqtt://user:s3cret@host:1883")
        #expect(!url.description.contains("s3cret"))
        #expect(url.description == "mqtt://user:***@host:1883")
        do {
            _ = try BrokerURL(parsing: "mqtt://user:s3cret@host:notaport")
            Issue.record("accepted a bad port")
        } catch {
            #expect(!error.description.contains("s3cret"))
        }
    }
}

/// Form encoding writes into a buffer sized for every byte escaped: the worst case, the empty
/// cases, and a round trip through the decoder.
struct FormEncodingTests {
    @Test func everyByteIsEscapedOrKeptAndReadsBack() throws {
        let text = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self) + "ü€𝄞 +%&="
        let escaped = FormEncoding.escape(text)
        #expect(escaped.utf8.allSatisfy { $0 < 128 } && !escaped.contains(" ") && !escaped.contains("&"))
        #expect(FormEncoding.escape("a-Z_0.~") == "a-Z_0.~")
        #expect(FormEncoding.escape("€") == "%E2%82%AC" && FormEncoding.escape("") == "")
        let parameters = [FormParameter(name: "n ü", value: text), FormParameter(name: "", value: ""), FormParameter(name: "x", value: "€€€")]
        let encoded = FormEncoding.encode(parameters)
        #expect(try FormEncoding.decode(Array(encoded.utf8)).filter { !$0.name.isEmpty } == [parameters[0], parameters[2]])
        #expect(FormEncoding.encode([]) == "" && FormEncoding.encode([FormParameter(name: "a", value: "")]) == "a=")
    }

    /// Each ASCII byte on its own: RFC 3986's unreserved characters kept, every other byte `%XX`.
    @Test func exactlyTheUnreservedCharactersAreKept() {
        let unreserved = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~".utf8)
        for byte in UInt8(0)...UInt8(127) {
            let text = String(decoding: [byte], as: UTF8.self)
            let expected = unreserved.contains(byte) ? text : "%" + String(byte, radix: 16, uppercase: true).leftPadded(to: 2)
            #expect(FormEncoding.escape(text) == expected, "byte \(byte)")
            #expect(FormEncoding.isUnreserved(byte) == unreserved.contains(byte), "byte \(byte)")
        }
        for byte in UInt8(128)...UInt8(255) { #expect(!FormEncoding.isUnreserved(byte), "byte \(byte)") }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
