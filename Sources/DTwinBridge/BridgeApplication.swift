import AsyncHTTPClient
import DTwinConfig
import DTwinContract
import DTwinMQTT
import DTwinStore
import DTwinUpstream
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// The bridge daemon, assembled from a configuration: `dtwin bridge` runs it, tests run it
/// in-process against their own broker and upstream.
public struct BridgeApplication: Sendable {
    public let bridge: BridgeService
    public let serviceGroup: ServiceGroup

    /// Runs until SIGTERM/SIGINT (or cancellation), then shuts down gracefully.
    public func run() async throws {
        try await serviceGroup.run()
    }

    /// Starts the same graceful shutdown as SIGTERM (for tests and embedding).
    public func shutdown() async {
        await serviceGroup.triggerGracefulShutdown()
    }

    /// Builds every part; fails (naming the key) for configurations this version cannot run.
    public init(configuration: DTwinConfiguration, logger: Logger, handleSignals: Bool = true) throws {
        var resources: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let upstream: any Upstream
        switch configuration.upstream.mode {
        case .local:
            let store = try Self.openStore(configuration)
            resources.append(.init(service: ResourceService(name: "store") { try? await store.close() }))
            let replies = configuration.devices.compactMapValues { $0.reply.isEmpty ? nil : $0.reply }
            upstream = LocalLambda(store: store, replies: replies)
        case .apigw:
            let client = Self.makeHTTPClient(configuration)
            resources.append(.init(service: ResourceService(name: "http-client") { try? await client.shutdown() }))
            upstream = APIGatewayUpstream(
                url: configuration.upstream.url, post: configuration.upstream.method == .POST,
                timeout: configuration.upstream.timeout, client: client)
        case .lambda:
            throw ConfigurationError(key: "upstream.mode", message: "lambda is not available in this version yet; use local or apigw")
        }
        let mqtt = try MQTTClient(configuration: .bridge(configuration), logger: logger)
        let retry = configuration.upstream.retry
        bridge = BridgeService(
            mqtt: mqtt, upstream: upstream, tree: configuration.topicPrefix, maxPayload: configuration.maxPayload,
            retryPolicy: RetryPolicy(initial: retry.initial, maximum: retry.max, maxAge: retry.maxAge),
            concurrency: configuration.upstream.concurrency, shutdownTimeout: configuration.shutdownTimeout,
            logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: resources + [.init(service: bridge, successTerminationBehavior: .gracefullyShutdownGroup)],
            logger: logger)
        if handleSignals { groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint] }
        // A safety net above the bridge's own deadline: never hang on the way out.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(10)
        serviceGroup = ServiceGroup(configuration: groupConfiguration)
    }

    /// Opens the configured twin table.
    public static func openStore(_ configuration: DTwinConfiguration) throws -> any TwinStore {
        switch configuration.store.kind {
        case .sqlite:
            return try SQLiteTwinStore(path: configuration.store.path, table: configuration.store.table)
        case .dynamodb:
            throw ConfigurationError(key: "store.kind", message: "dynamodb is not available in this version yet; use sqlite")
        }
    }

    static func makeHTTPClient(_ configuration: DTwinConfiguration) -> HTTPClient {
        var http = HTTPClient.Configuration()
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.upstream.concurrency
        http.timeout.connect = .seconds(5)
        // A redirect from API Gateway means a wrong URL: it is reported, never followed.
        http.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }
}
