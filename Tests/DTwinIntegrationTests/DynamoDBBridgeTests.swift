import AsyncHTTPClient
import DTwinAWS
import DTwinApp
import DTwinConfig
import DTwinContract
import DTwinDynamoDB
import DTwinStore
import DTwinTestSupport
import Foundation
import Testing

/// `store.kind: dynamodb` end to end: the bridge stores readings in the twin table on moto's
/// server, and `dtwin readings` reads them back from there.
@Suite struct DynamoDBBridgeTests {
    static let aws = ["AWS_ACCESS_KEY_ID": "AKIDBRIDGE", "AWS_SECRET_ACCESS_KEY": "bridge-secret"]

    @Test func readingsLandInDynamoDBAndTheCommandLineReadsThem() async throws {
        let moto = try MotoServer()
        let client = try DynamoDBClient(
            endpoint: moto.endpoint, region: "us-west-2",
            credentials: AWSCredentials(accessKeyId: "AKIDBRIDGE", secretAccessKey: "bridge-secret"), http: .shared)
        try await client.createTwinTable()

        let harness = try await BridgeHarness(environment: Self.aws) {
            $0.store.kind = .dynamodb
            $0.store.endpoint = moto.endpoint
        }
        for n in 1...3 { try await harness.publish("dtwin/uno1/up", "sim-uno1 data \(n * 100)") }
        let store = DynamoDBTwinStore(table: "digitaltwin", client: client)
        #expect(await waitUntil { ((try? await store.items(device: DeviceName("uno1")!, since: nil, until: nil, limit: 10)) ?? []).count == 3 })
        let items = try await store.items(device: DeviceName("uno1")!, since: nil, until: nil, limit: 10)
        // Newest first; readings in the same millisecond share a ts, so compare values as a set.
        #expect(Set(items.compactMap(\.value)) == [100, 200, 300])
        #expect(items.map(\.ts) == items.map(\.ts).sorted(by: >))
        #expect(items.allSatisfy { $0.kind == .reading && $0.source == "mqtt" })
        await harness.stop()

        let environment = Self.aws.merging([
            "DTWIN_STORE_KIND": "dynamodb", "DTWIN_STORE_ENDPOINT": moto.endpoint, "HOME": "/nonexistent",
        ]) { $1 }
        let readings = try await DTwinBinary.run(["readings", "uno1", "--json"], environment: environment)
        #expect(readings.code == 0, "\(readings.output)")
        #expect(readings.output.split(separator: "\n").count == 3, "\(readings.output)")
        #expect(readings.output.contains("\"value\":300") || readings.output.contains("\"value\" : 300"), "\(readings.output)")
        // Without credentials: one clear line, no stack trace, no secret.
        let refused = try await DTwinBinary.run(
            ["readings", "uno1"], environment: ["DTWIN_STORE_KIND": "dynamodb", "DTWIN_STORE_ENDPOINT": moto.endpoint, "HOME": "/nonexistent"])
        #expect(refused.code == 2, "a setting to fix: exit code 2")
        #expect(refused.output.contains("no AWS credentials"), "\(refused.output)")
        moto.stop()
    }

    /// With the cloud writing the table (`apigw`), the API reads it from DynamoDB, and
    /// `/readyz` says so when the table stops answering.
    @Test func theAPIReadsTheCloudsTableAndReadyzWatchesIt() async throws {
        let moto = try MotoServer()
        let credentials = AWSCredentials(accessKeyId: "AKIDBRIDGE", secretAccessKey: "bridge-secret")
        let client = try DynamoDBClient(endpoint: moto.endpoint, region: "us-west-2", credentials: credentials, http: .shared)
        try await client.createTwinTable()
        let cloud = DynamoDBTwinStore(table: "digitaltwin", client: client)
        for n in 1...3 {
            let item = TwinItem(
                messageId: "cloud-\(n)", device: "uno7", ts: Timestamp.iso8601(millis: 1_764_000_000_000 + Int64(n) * 1000),
                payload: "sim-uno7 data \(n)", payloadEncoding: nil, kind: .reading, value: Double(n), seq: nil, source: "mqtt")
            try await cloud.put(item)
        }
        let gateway = try await HTTPReceiver.start()
        let harness = try await TwilioHarness(environment: Self.aws) {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
            $0.store.kind = .dynamodb
            $0.store.endpoint = moto.endpoint
        }

        let readings = try await harness.get("/api/devices/uno7/readings")
        #expect(readings.status == 200, "\(readings)")
        let values = (readings.json["items"] as? [[String: Any]] ?? []).compactMap { $0["value"] as? Double }
        #expect(values == [1, 2, 3])
        let devices = try await harness.get("/api/devices")
        let uno7 = (devices.json["devices"] as? [[String: Any]] ?? []).first { $0["device"] as? String == "uno7" }
        #expect(uno7?["storedItems"] as? Int == 3, "\(devices.body)")
        #expect(try await harness.get("/readyz", bearer: nil).status == 200)

        moto.stop()
        let ready = try await harness.get("/readyz", bearer: nil)
        #expect(ready.status == 503, "\(ready)")
        #expect(ready.json["ready"] as? Bool == false)
        #expect((ready.json["problems"] as? [String])?.contains { $0.hasPrefix("the twin table does not answer") } == true, "\(ready.body)")
        let unavailable = try await harness.get("/api/devices/uno7/readings")
        #expect(unavailable.status == 503 && unavailable.error?.hasPrefix("the twin table is not available") == true, "\(unavailable)")
        #expect(!ready.body.contains("bridge-secret") && !unavailable.body.contains("bridge-secret"))
        await harness.stop()
        await gateway.stop()
    }

    /// The cloud drives a device through its twin (issue 19): an upstream answer with
    /// `{"desired": {...}}` is set in the twin on DynamoDB, and the device, online, gets the
    /// command at once; the reading that reports it closes the delta.
    @Test func theCloudsAnswerSetsTheDesiredState() async throws {
        let moto = try MotoServer()
        defer { moto.stop() }
        let client = try DynamoDBClient(
            endpoint: moto.endpoint, region: "us-west-2",
            credentials: AWSCredentials(accessKeyId: "AKIDBRIDGE", secretAccessKey: "bridge-secret"), http: .shared)
        try await client.createTwinTable()
        // The cloud wants the LED on while the light is low, and says nothing otherwise.
        let gateway = try await HTTPReceiver.start { request in
            let payload = request.query["Payload"].flatMap { Data(base64Encoded: $0) }.map { String(decoding: $0, as: UTF8.self) } ?? ""
            return payload.contains(#""value": 80"#) ? .init(body: #"{"desired": {"led": true}}"#) : .init(body: "{}")
        }
        let harness = try await TwilioHarness(environment: Self.aws) {
            $0.upstream.mode = .apigw
            $0.upstream.url = gateway.url
            $0.store.kind = .dynamodb
            $0.store.endpoint = moto.endpoint
        }
        try await harness.bridge.publish("dtwin/a/status", "online")
        try await harness.bridge.publish("dtwin/a/up", #"{"value": 80, "led": "off"}"#)
        #expect(await harness.bridge.watcher.waitFor { _ in harness.downPayloads("a") == ["LIG"] })
        try await harness.bridge.publish("dtwin/a/up", #"{"value": 380, "led": "on"}"#)
        let store = DynamoDBTwinStore(table: "digitaltwin", client: client)
        #expect(
            await waitUntil(timeout: .seconds(10)) {
                let twin = try? await store.twin(DeviceName("a")!)
                return twin?.desired == ["led": .bool(true)] && twin?.delta.isEmpty == true && twin?.reported["value"] == .number(380)
            })
        #expect(harness.downPayloads("a") == ["LIG"])
        await harness.stop()
        await gateway.stop()
    }
}
