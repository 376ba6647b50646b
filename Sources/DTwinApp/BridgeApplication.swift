import AsyncHTTPClient
import DTwinAWS
import DTwinBridge
import DTwinConfig
import DTwinContract
import DTwinDynamoDB
import DTwinHTTP
import DTwinMQTT
import DTwinSpool
import DTwinStore
import DTwinTwilio
import DTwinUpstream
import Foundation
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import UnixSignals

/// The bridge daemon, assembled from a configuration and the environment (secrets live only
/// there): `dtwin bridge` runs it, tests run it in-process against their own broker and servers.
///
/// Services, in start order (they stop in reverse): shared resources (store, HTTP client), the
/// SMS outbox, the bridge, the HTTP server. So on SIGTERM the server stops taking webhooks
/// first, the bridge drains, the outbox sends what the drain produced, then resources close.
public struct BridgeApplication: Sendable {
    public let bridge: BridgeService
    public let outbox: SMSOutbox
    public let webhooks: TwilioWebhooks
    /// Where the HTTP server listens once it runs.
    public let httpAddress = HTTPServer.Address()
    /// This bridge's metrics (`GET /metrics`); one registry per bridge, so several bridges in
    /// one process (the tests) count apart.
    public let metrics = PrometheusCollectorRegistry()
    public let serviceGroup: ServiceGroup

    /// Runs until SIGTERM/SIGINT (or cancellation), then shuts down gracefully.
    public func run() async throws {
        try await serviceGroup.run()
    }

    /// Starts the same graceful shutdown as SIGTERM (for tests and embedding).
    public func shutdown() async {
        await serviceGroup.triggerGracefulShutdown()
    }

    /// Builds every part; fails (naming the key or variable) for what this version cannot run.
    public init(
        configuration: DTwinConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger, handleSignals: Bool = true
    ) throws {
        var resources: [ServiceGroupConfiguration.ServiceConfiguration] = []
        let credentials = try Self.twilioCredentials(environment)
        let book = try Self.addressBook(configuration)

        // One HTTP client per process, for the upstream and Twilio alike.
        var httpClient: HTTPClient?
        // A setting refused below must not leave the client running: it would leak, and debug
        // builds stop the process over an HTTPClient that was never shut down.
        var assembled = false
        defer { if !assembled { try? httpClient?.syncShutdown() } }
        if configuration.upstream.mode != .local || credentials != nil {
            let client = Self.makeHTTPClient(configuration)
            resources.append(.init(service: ResourceService(name: "http-client") { try? await client.shutdown() }))
            httpClient = client
        }
        let twilio = credentials.map { credentials in
            TwilioClient(
                credentials: credentials, apiBase: configuration.twilio.apiBase, superSimBase: configuration.twilio.superSimBase,
                client: httpClient!)
        }
        let publicURL = configuration.http.publicURL
        outbox = SMSOutbox(
            client: twilio,
            settings: .init(
                from: configuration.twilio.from,
                statusCallback: publicURL.isEmpty ? nil : publicURL.trimmingTrailingSlashes() + "/twilio/status",
                smsPerHour: configuration.twilio.smsPerHour),
            logger: logger, metrics: PrometheusMetricsFactory(registry: metrics))
        if twilio != nil && configuration.twilio.from.isEmpty {
            logger.warning("twilio.from is empty: Twilio will refuse every SMS until it names your Twilio number")
        }
        let relay = SMSRelay(outbox: outbox, book: book)

        var store: (any TwinStore)?
        let upstream: any Upstream
        switch configuration.upstream.mode {
        case .local:
            let opened = try Self.openStore(configuration, environment: environment, logger: logger)
            store = opened
            resources.append(.init(service: ResourceService(name: "store") { try? await opened.close() }))
            let replies = configuration.devices.compactMapValues { $0.reply.isEmpty ? nil : $0.reply }
            let alerts = AlertService(rules: configuration.alerts, relay: relay, logger: logger)
            upstream = LocalLambda(store: opened, replies: replies, onStored: { alerts.stored($0) })
        case .apigw:
            store = try Self.cloudTable(configuration, environment: environment, logger: logger)
            let apigw = try Self.apiGatewayUpstream(configuration, environment: environment, client: httpClient!)
            // Its connections are its own (on the client's event loops): closed before the client stops.
            resources.append(.init(service: ResourceService(name: "upstream") { await apigw.close() }))
            upstream = apigw
        case .lambda:
            store = try Self.cloudTable(configuration, environment: environment, logger: logger)
            upstream = try Self.lambdaUpstream(configuration, environment: environment, client: httpClient!)
        }
        if let store, configuration.upstream.mode != .local {
            resources.append(.init(service: ResourceService(name: "store") { try? await store.close() }))
        }
        if configuration.upstream.mode != .local && !configuration.alerts.isEmpty {
            logger.warning("alerts apply in upstream.mode local only; with \(configuration.upstream.mode) the cloud side sends alerts")
        }

        // Before anything touches the broker: a second bridge on this spool stops here, instead
        // of taking over the first one's client id and session.
        let spoolLock = try Self.lockSpool(configuration)
        if let spoolLock { resources.insert(.init(service: ResourceService(name: "spool-lock") { spoolLock.release() }), at: 0) }
        let spool = try Self.openSpool(configuration, logger: logger)
        if configuration.upstream.mode == .local, let spool, let store {
            // A delivered message leaves the spool only once the twin table holds it on disk.
            spool.removalsWait(for: { try await store.makeDurable() })
        }
        let mqtt = try MQTTClient(configuration: .bridge(configuration), logger: logger)
        let cellular = Set(configuration.devices.filter { $0.value.cellular }.keys)
        let queue = PublishQueue(spool: spool, memoryLimit: configuration.spool.maxBytes)
        let dispatcher = CommandDispatcher(queue: queue, tree: configuration.topicPrefix, cellular: cellular, twilio: twilio, logger: logger)
        let registry = DeviceRegistry(configured: Set(configuration.devices.keys), metrics: PrometheusMetricsFactory(registry: metrics))
        let retry = configuration.upstream.retry
        // The twins live in the twin table, where there is one here (local mode, or DynamoDB).
        let schemas = configuration.devices.filter { $0.value.twin != nil || $0.value.twinTimeout != nil }.mapValues(\.twinSchema)
        let live = LiveEvents()
        let twinMetrics = PrometheusMetricsFactory(registry: metrics)
        let twins = store.map { TwinService(store: $0, commands: dispatcher, schemas: schemas, live: live, metrics: twinMetrics, logger: logger) }
        bridge = BridgeService(
            mqtt: mqtt, upstream: upstream, spool: spool, publishQueue: queue, dispatcher: dispatcher, registry: registry,
            smsRelay: relay, twins: twins, live: live,
            tree: configuration.topicPrefix, group: BridgeGroup(instance: configuration.instance, sharedGroup: configuration.sharedGroup),
            maxPayload: configuration.maxPayload,
            retryPolicy: RetryPolicy(initial: retry.initial, maximum: retry.max, maxAge: retry.maxAge),
            concurrency: configuration.upstream.concurrency, shutdownTimeout: configuration.shutdownTimeout,
            metrics: PrometheusMetricsFactory(registry: metrics), logger: logger,
            beforeConnecting: { [httpAddress] in
                // The HTTP port first: a second bridge on a taken port stops before it connects.
                guard await httpAddress.port(timeout: .seconds(30)) != nil else {
                    throw HTTPServerError(message: "the HTTP server did not start listening (http.host, http.port)")
                }
            })

        webhooks = TwilioWebhooks(
            validator: credentials.map { TwilioRequestValidator(authToken: $0.authToken) }, accountSid: credentials?.accountSid,
            publicURL: publicURL, book: book, outbox: outbox, commands: dispatcher, directory: registry, cellular: bridge, store: store,
            seen: spool ?? SeenMessageSids(), twins: twins, logger: logger)
        if publicURL.isEmpty && credentials != nil {
            logger.notice(
                "http.publicURL is not set: webhook signatures are checked against the Host header, which is wrong behind a proxy")
        }
        let access = APIAccess(token: environment["DTWIN_API_TOKEN"])
        let api = DeviceAPI(
            access: access, commands: dispatcher, directory: registry, testEvents: bridge,
            store: store,
            storeAbsence: "upstream.mode \(configuration.upstream.mode) stores readings in the cloud: set store.kind: dynamodb "
                + "(and store.table, store.region) to read the cloud's twin table here",
            configured: Set(configuration.devices.keys), outbox: outbox, twins: twins, logger: logger)
        let dashboard = Dashboard(
            access: access, live: live, health: bridge, publicURL: configuration.http.publicURL, logger: logger)
        let server = HTTPServer.build(
            host: configuration.http.host, port: configuration.http.port, webhooks: webhooks, api: api, dashboard: dashboard,
            readiness: Readiness(health: bridge, store: store), health: bridge, address: httpAddress, metrics: metrics, logger: logger)

        // Stopped in reverse order: the server first, then the stats line and the spool's
        // removals, then the bridge (which stops taking messages and drains while the twins, the
        // delivery workers and the publisher still run), the twins (which write what devices
        // last said), the delivery workers, the publisher, the SMS outbox, the shared resources.
        typealias Entry = ServiceGroupConfiguration.ServiceConfiguration
        var services: [Entry] = resources
        services.append(.init(service: outbox))
        services.append(.init(service: OutboundPublisher(queue: queue, mqtt: mqtt, counters: bridge.counters, logger: logger)))
        services.append(.init(service: bridge.delivery))
        if let twins { services.append(.init(service: twins)) }
        services.append(.init(service: bridge, successTerminationBehavior: .gracefullyShutdownGroup))
        if let spool { services.append(.init(service: SpoolMaintenance(spool: spool, logger: logger))) }
        services.append(.init(service: StatsReporter(bridge: bridge, logger: logger)))
        services.append(.init(service: server))
        if let notifier = SystemdNotifier(environment: environment, httpAddress: httpAddress, bridge: bridge, logger: logger) {
            services.append(.init(service: notifier))
        }
        var groupConfiguration = ServiceGroupConfiguration(services: services, logger: logger)
        if handleSignals { groupConfiguration.gracefulShutdownSignals = [.sigterm, .sigint] }
        // A safety net above the bridge's own deadline: never hang on the way out.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownTimeout + .seconds(10)
        serviceGroup = ServiceGroup(configuration: groupConfiguration)
        assembled = true
    }

    /// Opens the configured twin table. DynamoDB takes its credentials the standard AWS way
    /// (environment, then `AWS_PROFILE` in the shared files) and `store.region`/`store.endpoint`.
    public static func openStore(
        _ configuration: DTwinConfiguration, environment: [String: String] = ProcessInfo.processInfo.environment,
        logger: Logger = Logger(label: "dtwin.store")
    ) throws -> any TwinStore {
        let settings = configuration.store
        switch settings.kind {
        case .sqlite:
            return try SQLiteTwinStore(path: settings.path, table: settings.table)
        case .dynamodb:
            do throws(AWSError) {
                let aws = try AWSEnvironment.resolve(environment)
                let credentials = try aws.requiredCredentials()
                let client = try DynamoDBClient(endpoint: settings.endpoint, region: settings.region, credentials: credentials, http: .shared)
                return DynamoDBTwinStore(table: settings.table, client: client, logger: logger)
            } catch {
                throw ConfigurationError(key: "store.kind", message: "dynamodb: \(error)")
            }
        }
    }

    /// The API Gateway upstream; with `upstream.auth: iam` signed with the standard AWS
    /// credentials for the invoke URL's region (else `AWS_REGION`, the profile's, `store.region`).
    static func apiGatewayUpstream(
        _ configuration: DTwinConfiguration, environment: [String: String], client: HTTPClient
    ) throws -> APIGatewayUpstream {
        let settings = configuration.upstream
        var signer: SigV4?
        do throws(AWSError) {
            if settings.auth == .iam {
                let aws = try AWSEnvironment.resolve(environment)
                let credentials = try aws.requiredCredentials()
                let region = APIGatewayUpstream.region(ofInvokeURL: settings.url) ?? aws.region ?? configuration.store.region
                signer = SigV4(credentials: credentials, region: region, service: "execute-api")
            }
        } catch {
            throw ConfigurationError(key: "upstream.auth", message: "iam: \(error)")
        }
        do throws(UpstreamURLError) {
            return try APIGatewayUpstream(
                url: settings.url, post: settings.method == .post, timeout: settings.timeout, client: client, signer: signer)
        } catch {
            throw ConfigurationError(key: "upstream.url", message: error.description)
        }
    }

    /// The Lambda Invoke upstream, signed with the standard AWS credentials for the function
    /// ARN's region (else `AWS_REGION`, the profile's region, then `store.region`).
    static func lambdaUpstream(
        _ configuration: DTwinConfiguration, environment: [String: String], client: HTTPClient
    ) throws -> LambdaUpstream {
        let settings = configuration.upstream
        do throws(AWSError) {
            let aws = try AWSEnvironment.resolve(environment)
            let credentials = try aws.requiredCredentials()
            let region = LambdaUpstream.region(of: settings.function, fallback: aws.region ?? configuration.store.region)
            return try LambdaUpstream(
                function: settings.function, endpoint: settings.endpoint, region: region, credentials: credentials,
                timeout: settings.timeout, client: client)
        } catch {
            throw ConfigurationError(key: "upstream.mode", message: "lambda: \(error)")
        }
    }

    /// With `apigw` or `lambda` the cloud writes the twin table; when that table is on DynamoDB
    /// (`store.kind: dynamodb`) the API reads it from there. A local SQLite file would stay empty.
    static func cloudTable(_ configuration: DTwinConfiguration, environment: [String: String], logger: Logger) throws -> (any TwinStore)? {
        configuration.store.kind == .dynamodb ? try openStore(configuration, environment: environment, logger: logger) : nil
    }

    /// Twilio credentials from the environment; `nil` means dry-run (``StartupSummary`` says
    /// so). Half a pair is an error.
    static func twilioCredentials(_ environment: [String: String]) throws(IncompleteTwilioCredentials) -> TwilioCredentials? {
        switch TwilioCredentials.lookup(in: environment) {
        case .found(let credentials):
            return credentials
        case .absent:
            return nil
        case .incomplete(let incomplete):
            throw incomplete
        }
    }

    /// Locks the spool's folder (``DTwinConfiguration/spoolFolder``) for this process (`nil` with `spool.enabled: false`); throws
    /// ``BridgeAlreadyRunning`` when another bridge holds it.
    static func lockSpool(_ configuration: DTwinConfiguration) throws -> SpoolLock? {
        guard configuration.spool.enabled else { return nil }
        let folder = URL(fileURLWithPath: configuration.spoolFolder).standardizedFileURL.path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let lock: SpoolLock?
        do throws(SpoolError) { lock = try SpoolLock(folder: folder) } catch { throw ConfigurationError(key: "spool.path", message: "\(error)") }
        guard let lock else { throw BridgeAlreadyRunning(clientId: configuration.bridgeClientId, spool: folder) }
        return lock
    }

    /// The spool in its folder (`spool.path`, `-<instance>` for one of several), or `nil` with `spool.enabled: false`.
    public static func openSpool(_ configuration: DTwinConfiguration, logger: Logger) throws -> Spool? {
        let settings = configuration.spool
        guard settings.enabled else {
            logger.warning("spool.enabled is false: messages wait in memory only, and a crash loses the undelivered ones")
            return nil
        }
        let path = configuration.spoolFolder + "/spool.sqlite"
        do throws(SpoolError) {
            return try Spool(path: path, maxBytes: settings.maxBytes, durability: settings.sync == .full ? .full : .normal)
        } catch {
            throw ConfigurationError(key: "spool.path", message: "\(error)")
        }
    }

    /// `devices.<dev>.phones`, each checked to be an E.164 number.
    public static func addressBook(_ configuration: DTwinConfiguration) throws -> SMSAddressBook {
        var phonesByDevice: [DeviceName: Set<PhoneNumber>] = [:]
        for (device, settings) in configuration.devices {
            for text in settings.phones {
                guard let phone = PhoneNumber(text) else {
                    throw ConfigurationError(
                        key: "devices.\(device).phones", message: "\(text.debugDescription) is not a phone number like +12065550100")
                }
                phonesByDevice[device, default: []].insert(phone)
            }
        }
        return SMSAddressBook(phonesByDevice: phonesByDevice)
    }

    static func makeHTTPClient(_ configuration: DTwinConfiguration) -> HTTPClient {
        var http = HTTPClient.Configuration()
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.upstream.concurrency
        http.timeout.connect = .seconds(5)
        // A redirect from API Gateway or Twilio means a wrong URL: it is reported, never followed.
        http.redirectConfiguration = .disallow
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: http)
    }
}

/// Another bridge holds the spool: this one stops before it touches the broker.
public struct BridgeAlreadyRunning: Error, CustomStringConvertible {
    public let clientId: String
    public let spool: String

    public var description: String {
        "another dtwin bridge (clientId \(clientId), spool \(spool)) is running: stop it first, or give this one its own instance name (several bridges: README \"Several instances\")"
    }
}
