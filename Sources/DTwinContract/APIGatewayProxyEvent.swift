/// API Gateway's REST API proxy integration event (payload format 1.0), the fields dtwin fills
/// and reads. Field names are API Gateway's own; every field is optional when decoding, as in
/// AWS's published samples.
public struct APIGatewayProxyEvent: Codable, Sendable, Equatable {
    public static let defaultPath = "/digitaltwin"

    public var resource: String?
    public var path: String?
    public var httpMethod: String?
    public var headers: [String: String]?
    public var multiValueHeaders: [String: [String]]?
    public var queryStringParameters: [String: String]?
    public var multiValueQueryStringParameters: [String: [String]]?
    public var pathParameters: [String: String]?
    public var stageVariables: [String: String]?
    public var requestContext: RequestContext?
    public var body: String?
    public var isBase64Encoded: Bool?

    public struct RequestContext: Codable, Sendable, Equatable {
        public var accountId: String?
        public var resourceId: String?
        public var stage: String?
        public var requestId: String?
        public var resourcePath: String?
        public var httpMethod: String?
        public var path: String?
        public var `protocol`: String?
        public var requestTimeEpoch: Int64?
        public var apiId: String?
        public var identity: Identity?
    }

    public struct Identity: Codable, Sendable, Equatable {
        public var sourceIp: String?
        public var userAgent: String?
    }

    public func encode(to encoder: any Encoder) throws {
        // API Gateway sends explicit nulls for absent maps; the seed's Lambda reads them as None.
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(resource, forKey: .resource)
        try container.encode(path, forKey: .path)
        try container.encode(httpMethod, forKey: .httpMethod)
        try container.encode(headers, forKey: .headers)
        try container.encode(multiValueHeaders, forKey: .multiValueHeaders)
        try container.encode(queryStringParameters, forKey: .queryStringParameters)
        try container.encode(multiValueQueryStringParameters, forKey: .multiValueQueryStringParameters)
        try container.encode(pathParameters, forKey: .pathParameters)
        try container.encode(stageVariables, forKey: .stageVariables)
        try container.encode(requestContext, forKey: .requestContext)
        try container.encode(body, forKey: .body)
        try container.encode(isBase64Encoded, forKey: .isBase64Encoded)
    }
}

/// What a Lambda behind an API Gateway proxy integration returns.
public struct APIGatewayProxyResponse: Codable, Sendable, Equatable {
    public var statusCode: Int
    public var headers: [String: String]?
    public var body: String?
    public var isBase64Encoded: Bool?

    public init(statusCode: Int, headers: [String: String]? = ["Content-Type": "application/json"], body: String?) {
        self.statusCode = statusCode
        self.headers = headers
        self.body = body
        self.isBase64Encoded = false
    }
}
