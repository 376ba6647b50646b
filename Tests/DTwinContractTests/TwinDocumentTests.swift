import DTwinContract
import Foundation
import Testing

/// The twin document's rules (issue 19, item 1): pure, so every case is checked without a store.
@Suite struct TwinDocumentTests {
    let schema = TwinSchema.uno
    let t0: Int64 = 1_764_000_000_000

    func set(_ document: TwinDocument, _ patch: [String: JSONValue], ifVersion: Int64? = nil, at offset: Int64 = 0) throws -> TwinDocument {
        try document.settingDesired(patch, ifVersion: ifVersion, schema: schema, atMillis: t0 + offset).get()
    }

    @Test func aDesiredChangeIsPendingUntilTheDeviceReportsIt() throws {
        var twin = TwinDocument(device: "uno1")
        twin = try set(twin, ["led": .bool(true)])
        #expect(twin.version == 1 && twin.delta == ["led": .bool(true)] && twin.commandsToSend == ["LIG"])
        #expect(twin.desiredAt["led"] == t0 && twin.pending["led"]?.deadlineMillis == t0 + schema.pendingTimeoutMillis)
        twin = twin.settingReported(["led": .bool(true), "value": .number(734)], atMillis: t0 + 5)
        #expect(twin.version == 2 && twin.delta.isEmpty && twin.pending.isEmpty && twin.commandsToSend.isEmpty)
        #expect(twin.reportedAt["value"] == t0 + 5)
        // Setting what is already reported sends nothing; setting the same desired value again changes nothing.
        let same = try set(twin, ["led": .bool(true)])
        #expect(same == twin, "no change, no new version")
    }

    /// A device asleep through many changes gets the current delta once, not each change.
    @Test func manyChangesWhileAwayBecomeOneCommandPerKey() throws {
        var twin = TwinDocument(device: "uno1")
        for (n, on) in [true, false, true, false, true].enumerated() { twin = try set(twin, ["led": .bool(on)], at: Int64(n)) }
        twin = try set(twin, ["period": .number(300)], at: 10)
        twin = try set(twin, ["period": .number(60)], at: 11)
        #expect(twin.version == 7)
        #expect(twin.commandsToSend == ["LIG", "PERIOD 60"])
        #expect(twin.commandsToSend(keys: ["period"]) == ["PERIOD 60"], "a change sends its own key's command")
        #expect(twin.commandsToSend(since: t0 + 11) == ["PERIOD 60"], "what this change made pending")
        // The cloud answering the same wish with every reading sends nothing again.
        let again = try set(twin, ["led": .bool(true), "period": .number(60)], at: 12)
        #expect(again == twin && again.commandsToSend(since: t0 + 12).isEmpty)
        // Back to what the device reports: nothing is pending for that key any more.
        twin = twin.settingReported(["period": .number(60)], atMillis: t0 + 20)
        twin = try set(twin, ["led": .bool(false)], at: 21)
        twin = twin.settingReported(["led": .bool(false)], atMillis: t0 + 22)
        #expect(twin.commandsToSend.isEmpty && twin.delta.isEmpty)
    }

    /// A device that had the desired value and reports another (it restarted) has drifted: the
    /// key is pending again, to be sent; while a command waits, or after one failed, nothing new.
    @Test func aDeviceThatDriftsFromTheDesiredStateIsBroughtBack() throws {
        var twin = try set(TwinDocument(device: "uno1"), ["led": .bool(true), "period": .number(60)])
        twin = twin.settingReported(["led": .bool(true), "period": .number(60)], schema: schema, atMillis: t0 + 1)
        #expect(twin.pending.isEmpty && twin.delta.isEmpty)
        // Rebooted: LED off, period back to its default.
        twin = twin.settingReported(["led": .bool(false), "period": .number(10)], schema: schema, atMillis: t0 + 2)
        #expect(twin.commandsToSend(since: t0 + 2) == ["LIG", "PERIOD 60"])
        // Another report before the commands arrive: nothing new to send.
        let waiting = twin.settingReported(["led": .bool(false)], schema: schema, atMillis: t0 + 3)
        #expect(waiting.commandsToSend(since: t0 + 3).isEmpty && waiting.pending == twin.pending)
        // Without a schema (or once the key failed) a different value is only shown.
        let shownOnly = try set(TwinDocument(device: "uno1"), ["led": .bool(true)]).settingReported(["led": .bool(true)], atMillis: t0 + 1)
            .settingReported(["led": .bool(false)], atMillis: t0 + 2)
        #expect(shownOnly.pending.isEmpty && shownOnly.delta == ["led": .bool(true)])
        let failed = twin.expiringPending(atMillis: t0 + 2 + schema.pendingTimeoutMillis)
        let stillFailed = failed.settingReported(["led": .bool(false)], schema: schema, atMillis: t0 + 3 + schema.pendingTimeoutMillis)
        #expect(stillFailed.pending["led"]?.failed == true && stillFailed.commandsToSend.isEmpty)
    }

    @Test func aStaleVersionIsRefusedWithTheCurrentOne() throws {
        let twin = try set(TwinDocument(device: "uno1"), ["led": .bool(true)])
        let first = twin.settingDesired(["led": .bool(false)], ifVersion: 1, schema: schema, atMillis: t0 + 1)
        let second = twin.settingDesired(["period": .number(5)], ifVersion: 0, schema: schema, atMillis: t0 + 1)
        #expect((try? first.get())?.version == 2)
        #expect(second == .failure(.staleVersion(current: 1)))
        #expect("\(TwinRefusal.staleVersion(current: 1))" == "the twin has changed: its version is now 1")
    }

    @Test func aKeyThatWaitsTooLongIsMarkedFailedNotForgotten() throws {
        var twin = try set(TwinDocument(device: "uno1"), ["led": .bool(true)])
        #expect(twin.expiringPending(atMillis: t0 + schema.pendingTimeoutMillis - 1) == twin)
        twin = twin.expiringPending(atMillis: t0 + schema.pendingTimeoutMillis)
        #expect(twin.pending["led"]?.failed == true && twin.commandsToSend.isEmpty && twin.delta == ["led": .bool(true)])
        // The same value once more: someone insists, it is tried again.
        let insisted = try set(twin, ["led": .bool(true)], at: schema.pendingTimeoutMillis + 1)
        #expect(insisted.pending["led"]?.failed == false && insisted.commandsToSend(since: t0 + schema.pendingTimeoutMillis + 1) == ["LIG"])
        #expect(insisted.version == twin.version + 1)
        // Another value: pending anew.
        twin = try set(twin, ["led": .bool(false)], at: schema.pendingTimeoutMillis + 1)
        #expect(twin.pending["led"]?.failed == false && twin.commandsToSend == ["ACK"])
        // null removes the wish and what waits for it.
        twin = try set(twin, ["led": .null], at: schema.pendingTimeoutMillis + 2)
        #expect(twin.desired.isEmpty && twin.pending.isEmpty && twin.desiredAt.isEmpty)
    }

    @Test(arguments: [
        (["colour": JSONValue.string("red")], "unknown desired key \"colour\"; this device takes led, period"),
        (["led": JSONValue.string("on")], "led must be true or false"),
        (["period": JSONValue.number(2.5)], "period must be a whole number from 1 to 86400, not 2.5"),
        (["period": JSONValue.number(0)], "period must be a whole number from 1 to 86400, not 0"),
        (["period": JSONValue.number(90_000), "led": JSONValue.bool(true)], "period must be a whole number from 1 to 86400, not 90000"),
        ([:], "desired is empty"),
    ])
    func badDesiredValuesAreRefusedAndNothingChanges(_ patch: [String: JSONValue], _ words: String) {
        let twin = TwinDocument(device: "uno1")
        guard case .failure(.invalid(let reason)) = twin.settingDesired(patch, schema: schema, atMillis: t0) else {
            Issue.record("\(patch) was accepted")
            return
        }
        #expect(reason.hasPrefix(words), "\(reason)")
    }

    @Test func documentsOverTheLimitsAreRefused() {
        #expect((try? TwinLimits.parseObject(Array(#"{"desired": {"led": true}}"#.utf8)).get())?["desired"] == .object(["led": .bool(true)]))
        let deep = String(repeating: #"{"a":"#, count: 7) + "1" + String(repeating: "}", count: 7)
        #expect(TwinLimits.parseObject(Array(deep.utf8)) == .failure(.invalid("the document nests 7 deep; at most 6 levels are allowed")))
        let big = #"{"desired": {"note": ""# + String(repeating: "x", count: 8200) + #""}}"#
        guard case .failure(let tooBig) = TwinLimits.parseObject(Array(big.utf8)) else {
            Issue.record("an 8 KB document was accepted")
            return
        }
        #expect(tooBig == .tooLarge(bytes: big.utf8.count) && tooBig.code == 413)
        #expect(tooBig.description.contains("at most 8192"))
        #expect(TwinLimits.parseObject([0x7B, 0xFF, 0x7D]) == .failure(.invalid("the document is not UTF-8")))
        #expect(TwinLimits.parseObject(Array("[1]".utf8)) == .failure(.invalid("the document is not a JSON object")))
    }

    @Test func theDocumentRoundTripsAsJSON() throws {
        var twin = try set(TwinDocument(device: "uno1"), ["led": .bool(true), "period": .number(300)])
        twin = twin.settingReported(["value": .number(512), "unit": .string("adc")], atMillis: t0 + 3)
        let data = try JSONEncoder().encode(twin)
        #expect(try JSONDecoder().decode(TwinDocument.self, from: data) == twin)
    }

    /// `state/set` and `PATCH` requests: the fields each channel takes, and every refusal.
    @Test func setRequestsAreReadWithinTheirShape() {
        func parse(_ text: String, _ channel: TwinSetRequest.Channel = .mqtt) -> Result<TwinSetRequest, TwinRefusal> {
            TwinSetRequest.parse(Array(text.utf8), from: channel)
        }
        #expect(
            parse(#"{"desired": {"led": true}, "version": 7, "clientToken": "t1"}"#)
                == .success(TwinSetRequest(desired: ["led": .bool(true)], version: 7, clientToken: "t1")))
        #expect(parse(#"{"desired": {"period": 60}}"#, .http) == .success(TwinSetRequest(desired: ["period": .number(60)])))
        guard case .failure(.invalid(let versionInBody)) = parse(#"{"desired": {"led": true}, "version": 7}"#, .http),
            case .failure(.invalid(let noDesired)) = parse(#"{"led": true}"#),
            case .failure(.invalid(let badVersion)) = parse(#"{"desired": {}, "version": -1}"#),
            case .failure(.invalid(let fractional)) = parse(#"{"desired": {}, "version": 1.5}"#),
            case .failure(.invalid(let longToken)) = parse(#"{"desired": {}, "clientToken": "\#(String(repeating: "t", count: 65))"}"#),
            case .failure(.invalid(let notObject)) = parse(#"{"desired": [1]}"#)
        else {
            Issue.record("a malformed request was accepted")
            return
        }
        #expect(versionInBody.contains(#""version" is not part of it"#) && versionInBody.contains(#"{"desired": {...}}"#))
        #expect(noDesired.hasPrefix(#"the message must be {"desired": {...}, "version": N}"#) && noDesired.contains(#""led" is not part of it"#))
        #expect(badVersion.hasPrefix("version must be") && fractional == badVersion)
        #expect(longToken == "clientToken must be text of at most 64 bytes")
        #expect(notObject.hasPrefix("the message must be"))
        #expect(parse("{\"desired\": {\"note\": \"\u{FF}\"}}") != parse("x"), "UTF-8 text is fine")
        #expect(TwinSetRequest.parse([0x7B, 0xFF, 0x7D], from: .mqtt) == .failure(.invalid("the document is not UTF-8")))
    }

    /// The published document: the stored fields plus the delta; equal documents, equal bytes.
    @Test func thePublishedDocumentCarriesTheDelta() throws {
        var twin = TwinDocument(device: "uno1")
        twin = try twin.settingDesired(["led": .bool(true)], schema: .uno, atMillis: 10).get()
        let read = try JSONDecoder().decode(TwinDocument.self, from: Data(twin.jsonBytes))
        #expect(read == twin && read.delta == ["led": .bool(true)] && read.pending["led"]?.command == "LIG")
        #expect(twin.jsonBytes == twin.jsonBytes)
        #expect(String(decoding: twin.jsonBytes, as: UTF8.self).hasPrefix(#"{"delta":{"led":true},"desired":{"led":true}"#))
    }

    /// Several bridge instances share a device's messages in no order: each reported value
    /// carries its time, and a late one changes nothing (README: "Several instances").
    @Test func aLateReportNeverOverwritesANewerOne() throws {
        var twin = TwinDocument(device: "uno1")
        twin = twin.settingReported(["value": .init(.number(7), atMillis: t0 + 20)], atMillis: t0 + 30)
        let late = twin.settingReported(
            ["value": .init(.number(6), atMillis: t0 + 10), "led": .init(.bool(true), atMillis: t0 + 10)], atMillis: t0 + 31)
        #expect(late.reported["value"] == .number(7) && late.reportedAt["value"] == t0 + 20, "the older value is not applied")
        #expect(late.reported["led"] == .bool(true), "another key of the same report is new, and is")
        let newer = late.settingReported(["value": .init(.number(8), atMillis: t0 + 20)], atMillis: t0 + 32)
        #expect(newer.reported["value"] == .number(8), "the same time: the one that came last wins")
        // A late report of a key that is pending neither resolves it nor makes it drift.
        var pending = try set(TwinDocument(device: "uno1"), ["led": .bool(true)])
        pending = pending.settingReported(["led": .init(.bool(false), atMillis: t0 + 50)], schema: schema, atMillis: t0 + 60)
        let stale = pending.settingReported(["led": .init(.bool(true), atMillis: t0 + 40)], schema: schema, atMillis: t0 + 61)
        #expect(stale == pending && stale.pending["led"] != nil)
        #expect(TwinDocument.Report(.number(1), atMillis: 5).newer(.init(.number(2), atMillis: 4)).value == .number(1))
    }

    /// Who sends a pending command says so in the twin: a second return within the guard (the
    /// same return seen twice, or by another instance) sends nothing.
    @Test func aCommandSentIsNotSentAgainWithinTheGuard() throws {
        let twin = try set(TwinDocument(device: "uno1"), ["led": .bool(true), "period": .number(60)])
        let (sent, commands) = twin.sending(keys: nil, atMillis: t0 + 100, unlessSentWithin: 10_000)
        #expect(commands == ["LIG", "PERIOD 60"] && sent.pending["led"]?.sentMillis == t0 + 100 && sent.version == twin.version + 1)
        let (again, none) = sent.sending(keys: nil, atMillis: t0 + 9_000, unlessSentWithin: 10_000)
        #expect(none.isEmpty && again == sent, "within the guard: nothing, and no new version")
        let (_, later) = sent.sending(keys: ["period"], atMillis: t0 + 10_100, unlessSentWithin: 10_000)
        #expect(later == ["PERIOD 60"], "after it, the keys asked for")
        let stored = try JSONDecoder().decode(TwinDocument.self, from: Data(sent.jsonBytes))
        #expect(stored.pending["led"]?.sentMillis == t0 + 100, "kept in the stored document")
        let old =
            #"{"device":"uno1","version":1,"desired":{},"reported":{},"desiredAt":{},"reportedAt":{},"pending":{"led":{"value":true,"command":"LIG","sinceMillis":1,"deadlineMillis":2,"failed":false}}}"#
        #expect(
            try JSONDecoder().decode(TwinDocument.self, from: Data(old.utf8)).pending["led"]?.sentMillis == nil,
            "documents stored before it still read")
    }
}
