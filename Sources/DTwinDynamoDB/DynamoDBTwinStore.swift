import DTwinAWS
import DTwinContract
import DTwinStore
import Foundation

/// The twin table on DynamoDB (DESIGN.md §4, `store.kind: dynamodb`): partition key
/// `messageid`, the global secondary index ``index`` on (`device`, `ts`) for a device's items
/// in a time range. `cloud/dynamodb-table.json` creates both.
public struct DynamoDBTwinStore: TwinStore {
    /// The index the queries read; its name is part of the table's definition.
    public static let index = "device-ts"

    public let table: String
    let client: DynamoDBClient
    /// Items per Query or Scan page (DynamoDB's own cap is 1 MB a page).
    let pageSize: Int

    public init(table: String, client: DynamoDBClient, pageSize: Int = 500) {
        self.table = table
        self.client = client
        self.pageSize = pageSize
    }

    /// Checks the table and its index exist (start-up, `/readyz`).
    public func check() async throws {
        let answer = try await client.call("DescribeTable", ["TableName": .string(table)])
        let indexes = answer["Table"]?["GlobalSecondaryIndexes"]
        let names: [String] =
            if case .array(let list)? = indexes { list.compactMap { $0["IndexName"]?.stringValue } } else { [] }
        guard names.contains(Self.index) else {
            throw AWSError(.notFound, "table \(table) has no index \(Self.index) on (device, ts): create it as cloud/dynamodb-table.json does")
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
        } catch where error.code == .conditionFailed {
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
        while found.count < limit {
            request["Limit"] = .number(Double(min(pageSize, limit - found.count)))
            let page = try await page("Query", request)
            found += page.items
            guard let next = page.next else { break }
            request["ExclusiveStartKey"] = next
        }
        return found
    }

    public func devices() async throws -> [DeviceSummary] {
        var summaries: [String: DeviceSummary] = [:]
        var request: [String: JSONValue] = ["TableName": .string(table), "Limit": .number(Double(pageSize))]
        while true {
            let page = try await page("Scan", request)
            for item in page.items {
                if var summary = summaries[item.device] {
                    summary.count += 1
                    if item.ts > summary.latest.ts { summary.latest = item }
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
    func page(_ operation: String, _ request: [String: JSONValue]) async throws -> (items: [TwinItem], next: JSONValue?) {
        let answer: [String: JSONValue]
        do throws(AWSError) { answer = try await client.call(operation, request) } catch { throw StoreError(storeMessage(error)) }
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
