import AsyncHTTPClient
import DTwinApp
import DTwinAWS
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
}
