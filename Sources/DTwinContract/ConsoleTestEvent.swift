/// The Lambda console's test event from the seed notes: `{"testuser": "kilroy", "testdata": "3.14",
/// "isIOT": "False"}`. Every upstream must accept it and answer 200.
public struct ConsoleTestEvent: Codable, Sendable, Equatable {
    public var testuser: String
    public var testdata: String
    public var isIOT: String

    public static let seed = ConsoleTestEvent(testuser: "kilroy", testdata: "3.14", isIOT: "False")

    public init(testuser: String, testdata: String, isIOT: String) {
        self.testuser = testuser
        self.testdata = testdata
        self.isIOT = isIOT
    }

    /// The test event's query parameters, for an API Gateway URL (`apigw` mode).
    public var parameters: [IoTEvent.Parameter] {
        [
            .init(name: "testuser", value: testuser), .init(name: "testdata", value: testdata),
            .init(name: "isIOT", value: isIOT),
        ]
    }
}
