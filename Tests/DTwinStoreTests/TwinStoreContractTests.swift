import AsyncHTTPClient
import DTwinAWS
import DTwinContract
import DTwinDynamoDB
import DTwinStore
import DTwinTestSupport
import Foundation
import GRDB
import Logging
import Testing

/// One suite, both stores: SQLite in a temporary file, and DynamoDB on moto's server (a real
/// DynamoDB-compatible endpoint on 127.0.0.1), the table and index made from
/// `cloud/dynamodb-table.json`.
@Suite struct TwinStoreContractTests {
    enum Backend: String, CaseIterable, Sendable { case sqlite, dynamodb }

    static let credentials = AWSCredentials(accessKeyId: "AKIDTEST", secretAccessKey: "test-secret")

    /// An empty store of one kind and what it runs on; `close()` stops all of it.
    final class Fixture: Sendable {
        let store: any TwinStore
        let moto: MotoServer?
        let folder: URL

        init(_ backend: Backend, pageSize: Int = 500) async throws {
            folder = try makeTemporaryFolder("dtwin-store")
            switch backend {
            case .sqlite:
                moto = nil
                store = try SQLiteTwinStore(path: folder.appendingPathComponent("twin.sqlite").path)
            case .dynamodb:
                let moto = try MotoServer()
                self.moto = moto
                let client = try DynamoDBClient(
                    endpoint: moto.endpoint, region: "us-west-2", credentials: TwinStoreContractTests.credentials, http: .shared)
                try await client.createTwinTable()
                let store = DynamoDBTwinStore(table: "digitaltwin", client: client, pageSize: pageSize)
                try await store.check()
                self.store = store
            }
        }

        func close() async {
            try? await store.close()
            moto?.stop()
            try? FileManager.default.removeItem(at: folder)
        }
    }

    static func item(_ n: Int, device: String = "uno1", millis: Int64? = nil, value: Double? = nil) -> TwinItem {
        TwinItem(
            messageId: "m-\(device)-\(n)", device: device, ts: Timestamp.iso8601(millis: millis ?? (1_764_000_000_000 + Int64(n) * 1000)),
            payload: "sim-\(device) data \(n)", kind: .reading, value: value ?? Double(n), source: "mqtt")
    }

    @Test(arguments: Backend.allCases) func putIsIdempotentOnTheMessageID(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend)
        let store = fixture.store
        #expect(try await store.put(Self.item(1)) == true)
        var changed = Self.item(1)
        changed.value = 999
        #expect(try await store.put(changed) == false, "the first copy wins")
        let items = try await store.items(device: DeviceName("uno1")!, since: nil, until: nil, limit: 10)
        #expect(items == [Self.item(1)])
        await fixture.close()
    }

    /// Many puts at once (the delivery workers do this): each answers for its own item, new or
    /// duplicate, and every item is stored once. SQLite writes them in shared transactions.
    @Test(arguments: Backend.allCases) func concurrentPutsEachAnswerForTheirOwnItem(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend)
        let store = fixture.store
        try await store.put(Self.item(0, device: "dup"))
        let count = backend == .sqlite ? 400 : 60
        // Every fifth put repeats an item another put (or the one above) also writes.
        let answers = try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for n in 0..<count {
                group.addTask {
                    let item = n % 5 == 0 ? Self.item(n / 5 % 3, device: "dup") : Self.item(n, device: "dev-\(n % 7)")
                    return (n, try await store.put(item))
                }
            }
            return try await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(answers.count == count)
        for n in 0..<count where n % 5 != 0 { #expect(answers[n] == true, "item \(n) is new") }
        // dup-0 was stored before; dup-1 and dup-2 are new exactly once each.
        let duplicates = (0..<count).filter { $0 % 5 == 0 }.map { ($0 / 5 % 3, answers[$0]!) }
        #expect(duplicates.filter { $0.0 == 0 }.allSatisfy { !$0.1 })
        #expect(duplicates.filter { $0.0 == 1 && $0.1 }.count == 1 && duplicates.filter { $0.0 == 2 && $0.1 }.count == 1)
        var stored = 0
        for device in (0..<7).map({ "dev-\($0)" }) + ["dup"] {
            stored += try await store.items(device: DeviceName(device)!, since: nil, until: nil, limit: 1000).count
        }
        #expect(stored == count - count / 5 + 3)
        await fixture.close()
    }

    /// A transaction that fails fails every put in it, each naming its own message, and the
    /// store goes on taking puts (none waits forever for a batch that is gone).
    @Test func aFailedSharedWriteFailsEachPutInIt() async throws {
        let folder = try makeTemporaryFolder("dtwin-store")
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("twin.sqlite").path
        let store = try SQLiteTwinStore(path: path)
        try await store.put(Self.item(0))
        // Another process takes the table away.
        try await DatabaseQueue(path: path).write { try $0.execute(sql: "DROP TABLE digitaltwin") }
        let failures = await withTaskGroup(of: String?.self) { group in
            for n in 1...50 {
                group.addTask {
                    do {
                        _ = try await store.put(Self.item(n))
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(failures.count == 50)
        for n in 1...50 {
            #expect(failures.contains { $0?.contains("storing message m-uno1-\(n) failed") == true && $0?.contains("no such table") == true })
        }
        try await store.close()
    }

    /// Instances of a group start together on one new table file (a CI run caught the second
    /// failing with "UNIQUE constraint failed: grdb_migrations.identifier"): each opens it, none
    /// fails, and the table works for all of them.
    /// `makeDurable` (the spool waits for it before letting delivered messages go) returns on a
    /// store with commits and on an empty one, and leaves what is stored as it was.
    @Test(arguments: Backend.allCases) func makeDurableReturnsAndKeepsWhatIsStored(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend)
        let store = fixture.store
        await #expect(throws: Never.self) { try await store.makeDurable() }
        for n in 1...3 { try await store.put(Self.item(n)) }
        await #expect(throws: Never.self) { try await store.makeDurable() }
        let items = try await store.items(device: DeviceName("uno1")!, since: nil, until: nil, limit: 10)
        #expect(items.map(\.messageId).sorted() == ["m-uno1-1", "m-uno1-2", "m-uno1-3"])
        await fixture.close()
    }

    @Test func storesOpenedTogetherOnANewFileAllOpen() async throws {
        let folder = try makeTemporaryFolder("dtwin-store")
        defer { try? FileManager.default.removeItem(at: folder) }
        let openers = 4
        for round in 0..<25 {
            let path = folder.appendingPathComponent("twin-\(round).sqlite").path
            let outcomes = await withTaskGroup(of: String?.self) { group in
                for n in 0..<openers {
                    group.addTask {
                        do {
                            let store = try SQLiteTwinStore(path: path)
                            _ = try await store.put(Self.item(n))
                            try await store.close()
                            return nil
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                return await group.reduce(into: [String?]()) { $0.append($1) }
            }
            #expect(outcomes.compactMap { $0 }.isEmpty, "round \(round): \(outcomes.compactMap { $0 })")
            let store = try SQLiteTwinStore(path: path)
            #expect(try await store.devices().first?.count == openers)
            try await store.close()
        }
    }

    @Test(arguments: Backend.allCases) func everyFieldRoundTripsNumbersAsNumbers(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend)
        let full = TwinItem(
            messageId: "m-full", device: "esp-3", ts: "2026-11-25T10:00:00.123Z", payload: "AP/DKA==", payloadEncoding: "base64",
            kind: .raw, value: -734.25, seq: 12, source: "twilio-ipcommand")
        let awake = TwinItem(
            messageId: "m-awake", device: "esp-3", ts: "2026-11-25T10:00:01.000Z", payload: "esp-3:awake", kind: .awake, source: "mqtt")
        // Empty text stays empty text (never NULL), and text keeps every byte of its UTF-8.
        let empty = TwinItem(messageId: "m-empty", device: "esp-3", ts: "2026-11-25T10:00:02.000Z", payload: "", kind: .raw, source: "mqtt")
        let accented = TwinItem(
            messageId: "m-utf8", device: "esp-3", ts: "2026-11-25T10:00:03.000Z", payload: "température 21,5 °C ✓", kind: .raw,
            value: 0, seq: 0, source: "mqtt")
        for item in [full, awake, empty, accented] { try await fixture.store.put(item) }
        let items = try await fixture.store.items(device: DeviceName("esp-3")!, since: nil, until: nil, limit: 10)
        #expect(items == [accented, empty, awake, full])
        await fixture.close()
    }

    @Test(arguments: Backend.allCases) func aTimeRangeIsSinceInclusiveUntilExclusiveNewestFirst(_ backend: Backend) async throws {
        // A page of 4 on DynamoDB: the queries below need several pages.
        let fixture = try await Fixture(backend, pageSize: 4)
        for n in 0..<20 { try await fixture.store.put(Self.item(n)) }
        for n in 0..<5 { try await fixture.store.put(Self.item(n, device: "other")) }
        let base: Int64 = 1_764_000_000_000
        let device = DeviceName("uno1")!
        let all = try await fixture.store.items(device: device, since: nil, until: nil, limit: 100)
        #expect(all.map(\.value) == (0..<20).reversed().map { Double($0) })
        let range = try await fixture.store.items(device: device, since: base + 5000, until: base + 10000, limit: 100)
        #expect(range.map(\.value) == [9, 8, 7, 6, 5])
        let limited = try await fixture.store.items(device: device, since: base + 3000, until: nil, limit: 6)
        #expect(limited.map(\.value) == [19, 18, 17, 16, 15, 14])
        let before = try await fixture.store.items(device: device, since: nil, until: base + 2000, limit: 100)
        #expect(before.map(\.value) == [1, 0])
        #expect(try await fixture.store.items(device: device, since: base + 9000, until: base + 9000, limit: 10).isEmpty)
        #expect(try await fixture.store.items(device: DeviceName("nobody")!, since: nil, until: nil, limit: 10).isEmpty)
        await fixture.close()
    }

    /// Items of the same millisecond come back in the order of their ids (the bridge's ids
    /// increase in arrival order), on both stores, also where a page or the limit cuts through
    /// them: DynamoDB's index orders by time only.
    @Test(arguments: Backend.allCases) func itemsOfOneMillisecondAreOrderedByTheirIDs(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend, pageSize: 3)
        var ids = MonotonicMessageIDs()
        let millis: Int64 = 1_764_000_000_000
        let made = (0..<8).map { n in ids.next(millis: n < 2 ? millis - 1000 : millis) }
        #expect(made == made.sorted(), "ids increase in the order they are made")
        let items = made.enumerated().map { n, id in
            TwinItem(
                messageId: id.rawValue, device: "uno1", ts: Timestamp.iso8601(millis: n < 2 ? millis - 1000 : millis),
                payload: "sim-uno1 data \(n)", kind: .reading, value: Double(n), source: "mqtt")
        }
        // Stored out of order, so neither store can pass on insertion order.
        for n in [5, 2, 7, 0, 3, 6, 1, 4] { try await fixture.store.put(items[n]) }
        let device = DeviceName("uno1")!
        let all = try await fixture.store.items(device: device, since: nil, until: nil, limit: 100)
        #expect(all.map(\.value) == [7, 6, 5, 4, 3, 2, 1, 0])
        let latest = try await fixture.store.items(device: device, since: nil, until: nil, limit: 4)
        #expect(latest.map(\.value) == [7, 6, 5, 4], "the limit keeps the newest ids of the millisecond")
        #expect(try await fixture.store.devices().first?.latest == items[7])
        await fixture.close()
    }

    /// A twin document survives a reopening of the store, and of two writers that read the same
    /// version one wins and the other is refused (issue 19); the twin never shows up as an item.
    @Test(arguments: Backend.allCases) func twinsAreStoredConditionallyOnTheirVersion(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend, pageSize: 3)
        let store = fixture.store
        let device = DeviceName("uno1")!
        #expect(try await store.twin(device) == nil)
        let base = try TwinDocument(device: "uno1").settingDesired(["led": .bool(true)], schema: .uno, atMillis: 1).get()
        #expect(try await store.putTwin(base, replacing: 0))
        #expect(try await store.putTwin(base, replacing: 0) == false, "a second first write loses")
        let read = try #require(try await store.twin(device))
        #expect(read == base)
        let mine = try read.settingDesired(["period": .number(60)], schema: .uno, atMillis: 2).get()
        let theirs = try read.settingDesired(["led": .bool(false)], schema: .uno, atMillis: 3).get()
        let first = try await store.putTwin(mine, replacing: read.version)
        let second = try await store.putTwin(theirs, replacing: read.version)
        #expect(first && !second, "one of two writers of the same version wins")
        #expect(try await store.twin(device) == mine)
        try await store.put(Self.item(1))
        #expect(try await store.items(device: device, since: nil, until: nil, limit: 10).map(\.messageId) == ["m-uno1-1"])
        #expect(try await store.devices().map(\.count) == [1], "the twin is not an item")
        await fixture.close()
    }

    @Test(arguments: Backend.allCases) func devicesHaveTheirCountAndLatestItem(_ backend: Backend) async throws {
        let fixture = try await Fixture(backend, pageSize: 3)
        for n in 0..<7 { try await fixture.store.put(Self.item(n)) }
        for n in 0..<2 { try await fixture.store.put(Self.item(n, device: "b")) }
        let devices = try await fixture.store.devices()
        #expect(devices.map(\.device) == ["b", "uno1"])
        #expect(devices.map(\.count) == [2, 7])
        #expect(devices.map(\.latest) == [Self.item(1, device: "b"), Self.item(6)])
        await fixture.close()
    }
}

/// A table made the seed's way (partition key only): written as usual, read by Scan, said once.
@Suite struct SeedTableTests {
    @Test func readingsComeFromAFilteredScanWithOneWarning() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let client = try DynamoDBClient(endpoint: moto.endpoint, region: "us-west-2", credentials: TwinStoreContractTests.credentials, http: .shared)
        try await client.createSeedTable(named: "seedtable")
        let log = RecordedLog()
        // Pages of 2, so the Scan's pagination is used.
        let store = DynamoDBTwinStore(table: "seedtable", client: client, pageSize: 2, logger: log.logger())
        try await store.check()  // ready: the table answers, only the index is missing
        for n in 0..<7 { try await store.put(TwinStoreContractTests.item(n)) }
        for n in 0..<3 { try await store.put(TwinStoreContractTests.item(n, device: "b")) }
        #expect(try await store.put(TwinStoreContractTests.item(3)) == false)

        let uno1 = try DeviceName(validating: "uno1")
        let all = try await store.items(device: uno1, since: nil, until: nil, limit: 100)
        #expect(all == (0..<7).reversed().map { TwinStoreContractTests.item($0) })
        let since = Timestamp.parseMillis(TwinStoreContractTests.item(2).ts)!
        let until = Timestamp.parseMillis(TwinStoreContractTests.item(6).ts)!
        let range = try await store.items(device: uno1, since: since, until: until, limit: 3)
        #expect(range.map(\.messageId) == ["m-uno1-5", "m-uno1-4", "m-uno1-3"])

        let warnings = log.messages(at: .warning)
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.contains("aws dynamodb update-table --table-name seedtable") == true)
        #expect(warnings.first?.contains(#""IndexName":"device-ts""#) == true)
    }
}

/// DynamoDB's failures, each in words that say what to fix, retried only when that can help.
@Suite struct DynamoDBFailureTests {
    @Test func aMissingTableOrIndexIsNamed() async throws {
        let moto = try MotoServer()
        let client = try DynamoDBClient(endpoint: moto.endpoint, region: "us-west-2", credentials: TwinStoreContractTests.credentials, http: .shared)
        let store = DynamoDBTwinStore(table: "no-such-table", client: client)
        do {
            try await store.put(TwinStoreContractTests.item(1))
            Issue.record("a put into a missing table succeeded")
        } catch {
            #expect("\(error)".contains("ResourceNotFoundException") && "\(error)".contains("no-such-table"), "\(error)")
        }
        await #expect(throws: AWSError.self) { try await store.check() }
        moto.stop()
    }

    @Test func unknownCredentialsAreRefusedClearly() async throws {
        // With IAM checks on, moto refuses keys it never issued, as AWS does.
        let moto = try MotoServer(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "0"])
        let client = try DynamoDBClient(endpoint: moto.endpoint, region: "us-west-2", credentials: TwinStoreContractTests.credentials, http: .shared)
        do {
            _ = try await client.call("ListTables", [:])
            Issue.record("unknown credentials were accepted")
        } catch {
            #expect(error.code == .badCredentials, "\(error.code): \(error)")
            #expect(!error.message.contains("test-secret"))
        }
        moto.stop()
    }

    @Test func throttlingIsRetriedAndValidationIsNot() async throws {
        let throttled = try await HTTPReceiver.start { _ in
            .init(status: 400, body: #"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}"#)
        }
        let client = try DynamoDBClient(
            endpoint: "http://127.0.0.1:\(throttled.port)", region: "us-west-2", credentials: TwinStoreContractTests.credentials,
            http: .shared, attempts: 3)
        do {
            _ = try await client.call("PutItem", [:])
            Issue.record("a throttled call succeeded")
        } catch {
            #expect(error.code == .retryable && error.message.contains("Rate exceeded"))
        }
        #expect(throttled.requestCount == 3)
        await throttled.stop()

        let invalid = try await HTTPReceiver.start { _ in
            .init(
                status: 400,
                body: #"{"__type":"com.amazon.coral.validate#ValidationException","message":"One or more parameter values were invalid"}"#)
        }
        let strict = try DynamoDBClient(
            endpoint: "http://127.0.0.1:\(invalid.port)", region: "us-west-2", credentials: TwinStoreContractTests.credentials,
            http: .shared, attempts: 3)
        do {
            _ = try await strict.call("PutItem", [:])
            Issue.record("an invalid call succeeded")
        } catch {
            #expect(error.code == .validation)
        }
        #expect(invalid.requestCount == 1)
        // The request was signed for DynamoDB, with the JSON protocol's headers.
        let request = invalid.requests.first
        #expect(request?.headers["x-amz-target"] == "DynamoDB_20120810.PutItem")
        #expect(request?.headers["authorization"]?.contains("/us-west-2/dynamodb/aws4_request") == true)
        await invalid.stop()
    }
}
