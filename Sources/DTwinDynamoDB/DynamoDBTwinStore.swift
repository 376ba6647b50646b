import DTwinAWS
import DTwinContract
import DTwinStore
import Foundation
import Logging

/// The twin table on DynamoDB (README: "The twin table", `store.kind: dynamodb`): partition key
/// `messageid`, the global secondary index ``index`` on (`device`, `ts`) for a device's items
/// in a time range. `cloud/dynamodb-table.json` and `cloud/template.yaml` create both.
///
/// A table made the seed's way has the partition key and nothing else. Writes work the same;
/// a device's items then come from a paginated Scan with a filter (it reads, and bills, the
/// whole table), and the first time that happens one warning gives the command that adds the index.
public struct DynamoDBTwinStore: TwinStore {
    /// The index the queries read; its name is part of the table's definition.
    public static let index = "device-ts"

    public let table: String
    let client: DynamoDBClient
    /// Items per Query or Scan page (DynamoDB's own cap is 1 MB a page).
    let pageSize: Int
    let logger: Logger
    /// Set once the missing index has been reported: one warning per store, not one per request.
    let reportedNoIndex = SharedFlag()

    public init(table: String, client: DynamoDBClient, pageSize: Int = 500, logger: Logger = Logger(label: "dtwin.dynamodb")) {
        self.table = table
        self.client = client
        self.pageSize = pageSize
        self.logger = logger
    }

    /// Checks the table exists (start-up, `/readyz`). A table without the index is ready (it is
    /// read by Scan), and says so once.
    public func check() async throws {
        let answer = try await client.call("DescribeTable", ["TableName": .string(table)])
        let indexes = answer["Table"]?["GlobalSecondaryIndexes"]
        let names: [String] =
            if case .array(let list)? = indexes { list.compactMap { $0["IndexName"]?.stringValue } } else { [] }
        if !names.contains(Self.index) { reportNoIndex() }
    }

    /// The AWS CLI command that adds the index to a table made without it.
    public static func addIndexCommand(table: String) -> String {
        "aws dynamodb update-table --table-name \(table) "
            + "--attribute-definitions AttributeName=device,AttributeType=S AttributeName=ts,AttributeType=S "
            + "--global-secondary-index-updates '[{\"Create\":{\"IndexName\":\"\(index)\",\"KeySchema\":["
            + "{\"AttributeName\":\"device\",\"KeyType\":\"HASH\"},{\"AttributeName\":\"ts\",\"KeyType\":\"RANGE\"}],"
            + "\"Projection\":{\"ProjectionType\":\"ALL\"}}}]'"
    }

    func reportNoIndex() {
        guard reportedNoIndex.setOnce() else { return }
        logger.warning(
            "table \(table) has no index \(Self.index): a device's readings are read by a full Scan, which reads (and bills) the whole table. Add the index: \(Self.addIndexCommand(table: table))"
        )
    }

    /// DynamoDB answers a Query on a missing index with ValidationException "The table does not
    /// have the specified index"; moto with ResourceNotFoundException "Invalid index".
    static func isMissingIndex(_ error: AWSError) -> Bool {
        guard error.code == .validation || error.code == .notFound else { return false }
        let message = error.message.lowercased()
        return message.contains("specified index") || message.contains("invalid index")
    }

    /// A device's twin lives in the same table as its items, keyed `twin:<device>`, with no
    /// `ts`: the `device-ts` index leaves it out, and reading items skips it.
    static func twinKey(_ device: String) -> String { "twin:\(device)" }

    public func twin(_ device: DeviceName) async throws -> TwinDocument? {
        let answer: [String: JSONValue]
        do throws(AWSError) {
            answer = try await client.call(
                "GetItem",
                ["TableName": .string(table), "Key": .object(["messageid": .s(Self.twinKey(device.rawValue))]), "ConsistentRead": .bool(true)])
        } catch {
            throw StoreError(storeMessage(error))
        }
        guard let text = answer["Item"]?["document"]?["S"]?.stringValue else { return nil }
        do { return try TwinDocument(json: Array(text.utf8)) } catch {
            throw StoreError("the stored twin of \(device) cannot be read: \(error)")
        }
    }

    public func putTwin(_ document: TwinDocument, replacing version: Int64) async throws -> Bool {
        let text = String(decoding: document.json(withDelta: false), as: UTF8.self)
        var request: [String: JSONValue] = [
            "TableName": .string(table),
            "Item": .object([
                "messageid": .s(Self.twinKey(document.device)), "device": .s(document.device), "kind": .s("twin"),
                "version": .object(["N": .string(String(document.version))]), "document": .s(text),
            ]),
        ]
        // Conditional on the version read: two writers (two bridges, a bridge and the Lambda)
        // never overwrite each other's change.
        if version == 0 {
            request["ConditionExpression"] = .string("attribute_not_exists(messageid)")
        } else {
            request["ConditionExpression"] = .string("#v = :v")
            request["ExpressionAttributeNames"] = .object(["#v": .string("version")])
            request["ExpressionAttributeValues"] = .object([":v": .object(["N": .string(String(version))])])
        }
        do throws(AWSError) {
            _ = try await client.call("PutItem", request)
            return true
        } catch  where error.code == .conditionFailed {
            return false
        } catch {
            throw StoreError(storeMessage(error))
        }
    }

    public func put(_ item: TwinItem) async throws -> Bool {
        do throws(AWSError) {
            _ = try await client.call(
                "PutItem",
                [
                    "TableName": .string(table), "Item": .object(Self.attributes(item)),
                    // The first copy wins: a retried delivery cannot change history.
                    "ConditionExpression": .string("attribute_not_exists(messageid)"),
                ])
            return true
        } catch  where error.code == .conditionFailed {
            return false
        } catch {
            throw StoreError(storeMessage(error))
        }
    }

    public func items(device: DeviceName, since: Int64?, until: Int64?, limit: Int) async throws -> [TwinItem] {
        if let since, let until, until <= since { return [] }
        var condition = "#d = :d"
        var values: [String: JSONValue] = [":d": .s(device.rawValue)]
        // One condition on the sort key: `until` is exclusive, so the range ends a millisecond before it.
        switch (since, until) {
        case (let since?, let until?):
            condition += " AND #t BETWEEN :a AND :b"
            values[":a"] = .s(Timestamp.iso8601(millis: since))
            values[":b"] = .s(Timestamp.iso8601(millis: until - 1))
        case (let since?, nil):
            condition += " AND #t >= :a"
            values[":a"] = .s(Timestamp.iso8601(millis: since))
        case (nil, let until?):
            condition += " AND #t < :b"
            values[":b"] = .s(Timestamp.iso8601(millis: until))
        case (nil, nil):
            break
        }
        var request: [String: JSONValue] = [
            "TableName": .string(table), "IndexName": .string(Self.index), "KeyConditionExpression": .string(condition),
            // DynamoDB refuses a name the expression does not use.
            "ExpressionAttributeNames": .object(
                since == nil && until == nil ? ["#d": .string("device")] : ["#d": .string("device"), "#t": .string("ts")]),
            "ExpressionAttributeValues": .object(values), "ScanIndexForward": .bool(false),
        ]
        var found: [TwinItem] = []
        var more = false
        while found.count < limit {
            request["Limit"] = .number(Double(min(pageSize, limit - found.count)))
            let page: (items: [TwinItem], next: JSONValue?)
            do throws(AWSError) {
                page = try await rawPage("Query", request)
            } catch  where Self.isMissingIndex(error) {
                reportNoIndex()
                return try await scannedItems(device: device, since: since, until: until, limit: limit)
            } catch {
                throw StoreError(storeMessage(error))
            }
            found += page.items
            more = page.next != nil
            guard let next = page.next else { break }
            request["ExclusiveStartKey"] = next
        }
        // The index orders by time only: items of the same millisecond come in any order. When
        // the last one kept has peers left unread, read them all so the cut follows the ids too.
        if more, let boundary = found.last?.ts {
            found += try await itemsAt(device: device, ts: boundary).filter { peer in !found.contains { $0.messageId == peer.messageId } }
        }
        return Array(found.sorted(by: TwinItem.newerFirst).prefix(limit))
    }

    /// Every item of a device at exactly `ts`.
    private func itemsAt(device: DeviceName, ts: String) async throws -> [TwinItem] {
        try await allItems(
            "Query",
            [
                "TableName": .string(table), "IndexName": .string(Self.index), "KeyConditionExpression": .string("#d = :d AND #t = :t"),
                "ExpressionAttributeNames": .object(["#d": .string("device"), "#t": .string("ts")]),
                "ExpressionAttributeValues": .object([":d": .s(device.rawValue), ":t": .s(ts)]), "Limit": .number(Double(pageSize)),
            ])
    }

    /// A device's items on a table without the index: every page scanned, DynamoDB filtering,
    /// sorted here, newest first.
    func scannedItems(device: DeviceName, since: Int64?, until: Int64?, limit: Int) async throws -> [TwinItem] {
        var filter = "#d = :d"
        var names: [String: JSONValue] = ["#d": .string("device")]
        var values: [String: JSONValue] = [":d": .s(device.rawValue)]
        if let since {
            filter += " AND #t >= :a"
            values[":a"] = .s(Timestamp.iso8601(millis: since))
        }
        if let until {
            filter += " AND #t < :b"
            values[":b"] = .s(Timestamp.iso8601(millis: until))
        }
        if since != nil || until != nil { names["#t"] = .string("ts") }
        let found = try await allItems(
            "Scan",
            [
                "TableName": .string(table), "FilterExpression": .string(filter), "ExpressionAttributeNames": .object(names),
                "ExpressionAttributeValues": .object(values), "Limit": .number(Double(pageSize)),
            ])
        return Array(found.sorted(by: TwinItem.newerFirst).prefix(limit))
    }

    public func devices() async throws -> [DeviceSummary] {
        var summaries: [String: DeviceSummary] = [:]
        var request: [String: JSONValue] = ["TableName": .string(table), "Limit": .number(Double(pageSize))]
        while true {
            let page = try await page("Scan", request)
            for item in page.items {
                if var summary = summaries[item.device] {
                    summary.count += 1
                    if TwinItem.newerFirst(item, summary.latest) { summary.latest = item }
                    summaries[item.device] = summary
                } else {
                    summaries[item.device] = DeviceSummary(device: item.device, count: 1, latest: item)
                }
            }
            guard let next = page.next else { break }
            request["ExclusiveStartKey"] = next
        }
        return summaries.values.sorted { $0.device < $1.device }
    }

    public func close() async throws {}

    // MARK: pages and items

    /// One Query or Scan page: its items, and where the next page starts (`nil`: none).
    /// Every page of a Query or Scan.
    func allItems(_ operation: String, _ request: [String: JSONValue]) async throws -> [TwinItem] {
        var request = request
        var found: [TwinItem] = []
        while true {
            let page = try await page(operation, request)
            found += page.items
            guard let next = page.next else { return found }
            request["ExclusiveStartKey"] = next
        }
    }

    func page(_ operation: String, _ request: [String: JSONValue]) async throws -> (items: [TwinItem], next: JSONValue?) {
        do throws(AWSError) { return try await rawPage(operation, request) } catch { throw StoreError(storeMessage(error)) }
    }

    func rawPage(_ operation: String, _ request: [String: JSONValue]) async throws(AWSError) -> (items: [TwinItem], next: JSONValue?) {
        let answer = try await client.call(operation, request)
        let items: [TwinItem] = if case .array(let list)? = answer["Items"] { list.compactMap(Self.item) } else { [] }
        return (items, answer["LastEvaluatedKey"])
    }

    func storeMessage(_ error: AWSError) -> String {
        switch error.code {
        case .notFound: "\(error.message) (table \(table), index \(Self.index), region \(client.region), endpoint \(client.endpoint))"
        default: error.message
        }
    }

    /// §4's item: strings as `S`, `value` and `seq` as numbers (`N`).
    static func attributes(_ item: TwinItem) -> [String: JSONValue] {
        var attributes: [String: JSONValue] = [
            "messageid": .s(item.messageId), "device": .s(item.device), "ts": .s(item.ts), "payload": .s(item.payload),
            "kind": .s(item.kind.rawValue), "source": .s(item.source),
        ]
        if let encoding = item.payloadEncoding { attributes["payloadEncoding"] = .s(encoding) }
        if let value = item.value, value.isFinite { attributes["value"] = .n(value) }
        if let seq = item.seq { attributes["seq"] = .n(Double(seq)) }
        return attributes
    }

    static func item(_ json: JSONValue) -> TwinItem? {
        func s(_ name: String) -> String? { json[name]?["S"]?.stringValue }
        func n(_ name: String) -> Double? { json[name]?["N"]?.stringValue.flatMap(Double.init) }
        guard let id = s("messageid"), let device = s("device"), let ts = s("ts") else { return nil }
        return TwinItem(
            messageId: id, device: device, ts: ts, payload: s("payload") ?? "", payloadEncoding: s("payloadEncoding"),
            kind: s("kind").flatMap(DevicePayload.Kind.init(rawValue:)) ?? .raw, value: n("value"), seq: n("seq").map { Int64($0) },
            source: s("source") ?? DeviceMessage.Source.mqtt.rawValue)
    }
}
