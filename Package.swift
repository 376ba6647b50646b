// swift-tools-version:6.1
import PackageDescription

// Upcoming features taken from Hummingbird's own manifest: explicit `any`, and imports
// that are visible only where they are written.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "dtwin",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "dtwin", targets: ["dtwin"]),
        .executable(name: "dtwin-bench", targets: ["dtwin-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // libmosquitto, as Debian ships it (libmosquitto-dev).
        .systemLibrary(
            name: "CMosquitto",
            pkgConfig: "libmosquitto",
            providers: [.apt(["libmosquitto-dev"])]
        ),
        // A Swift MQTT client over libmosquitto: one network thread, messages as an AsyncSequence.
        .target(
            name: "DTwinMQTT",
            dependencies: [
                "CMosquitto",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The external contract: topics, device names, payloads, the IoT event, answers. No I/O.
        .target(
            name: "DTwinContract",
            swiftSettings: swiftSettings
        ),
        // dtwin.yaml + DTWIN_* environment overrides + embedded defaults, validated.
        .target(
            name: "DTwinConfig",
            dependencies: [
                "DTwinContract",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // SQLite statements bound with SQLite's own calls, for the paths every message takes.
        .target(
            name: "DTwinSQLite",
            dependencies: [
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The twin table (SQLite now; DynamoDB later).
        .target(
            name: "DTwinStore",
            dependencies: [
                "DTwinContract",
                "DTwinSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // AWS without an SDK: SigV4 signing and the standard credential lookup (pure).
        .target(
            name: "DTwinAWS",
            dependencies: [
                "DTwinContract",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // Topic inspection, recording, replay and simulated devices: pure, no I/O (the dtwin
        // command line does the MQTT and the terminal).
        .target(
            name: "DTwinInspect",
            dependencies: ["DTwinContract"],
            swiftSettings: swiftSettings
        ),
        // The twin table on DynamoDB (or any DynamoDB-compatible endpoint), over HTTP.
        .target(
            name: "DTwinDynamoDB",
            dependencies: [
                "DTwinAWS",
                "DTwinContract",
                "DTwinStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The durable spool: device messages on disk before the broker is acknowledged.
        .target(
            name: "DTwinSpool",
            dependencies: [
                "DTwinContract",
                "DTwinSQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Where IoT events go: API Gateway over HTTP, or the in-process "local Lambda".
        .target(
            name: "DTwinUpstream",
            dependencies: [
                "DTwinAWS",
                "DTwinContract",
                "DTwinStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // Twilio: webhook signatures, TwiML, the SMS grammar and addressing rules, the SMS
        // budget, and the REST client for Messages and Super SIM IP Commands.
        .target(
            name: "DTwinTwilio",
            dependencies: [
                "DTwinContract",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The bridge: MQTT in, per-device delivery lanes, retries, replies and dead letters out.
        .target(
            name: "DTwinBridge",
            dependencies: [
                "DTwinMQTT",
                "DTwinContract",
                "DTwinConfig",
                "DTwinSpool",
                "DTwinStore",
                "DTwinTwilio",
                "DTwinUpstream",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The HTTP server in the bridge process: Twilio webhooks, health, the API.
        .target(
            name: "DTwinHTTP",
            dependencies: [
                "DTwinBridge",
                "DTwinContract",
                "DTwinSpool",
                "DTwinStore",
                "DTwinTwilio",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The bridge daemon assembled: configuration and environment in, one ServiceGroup out.
        .target(
            name: "DTwinApp",
            dependencies: [
                "DTwinAWS",
                "DTwinBridge",
                "DTwinDynamoDB",
                "DTwinConfig",
                "DTwinContract",
                "DTwinHTTP",
                "DTwinMQTT",
                "DTwinSpool",
                "DTwinStore",
                "DTwinTwilio",
                "DTwinUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line: a small @main over the modules above.
        .executableTarget(
            name: "dtwin",
            dependencies: [
                "DTwinApp",
                "DTwinBridge",
                "DTwinTwilio",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "DTwinConfig",
                "DTwinContract",
                "DTwinInspect",
                "DTwinMQTT",
                "DTwinStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Real servers for tests and benchmarks: a mosquitto on a free port, an HTTP receiver.
        .target(
            name: "DTwinTestSupport",
            dependencies: [
                "DTwinAWS",
                "DTwinMQTT",
                "DTwinContract",
                "DTwinDynamoDB",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "dtwin-bench",
            dependencies: [
                "DTwinTestSupport",
                "DTwinMQTT",
                "DTwinContract",
                "DTwinSpool",
                "DTwinUpstream",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Benchmarks/dtwin-bench",
            swiftSettings: swiftSettings
        ),
        // The HTTP routes without sockets (HummingbirdTesting's router client), with stand-ins
        // for the bridge behind the HTTP layer's protocols.
        .testTarget(
            name: "DTwinHTTPTests",
            dependencies: [
                "DTwinHTTP", "DTwinBridge", "DTwinContract", "DTwinTwilio", "DTwinTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinInspectTests",
            dependencies: ["DTwinInspect", "DTwinContract"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinContractTests",
            dependencies: ["DTwinContract", "DTwinTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinTwilioTests",
            dependencies: ["DTwinTwilio", "DTwinContract", "DTwinTestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinAWSTests",
            dependencies: ["DTwinAWS", "DTwinContract", "DTwinTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinSQLiteTests",
            dependencies: ["DTwinSQLite", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinStoreTests",
            dependencies: [
                "DTwinAWS", "DTwinContract", "DTwinDynamoDB", "DTwinStore", "DTwinTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinSpoolTests",
            dependencies: ["DTwinSpool", "DTwinContract", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinConfigTests",
            dependencies: ["DTwinConfig", "DTwinContract"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinBridgeTests",
            dependencies: ["DTwinBridge", "DTwinConfig", "DTwinContract", "DTwinMQTT", "DTwinSpool", "DTwinStore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinMQTTTests",
            dependencies: ["DTwinMQTT", "DTwinTestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "DTwinIntegrationTests",
            dependencies: [
                "DTwinApp",
                "DTwinAWS",
                "DTwinBridge",
                "DTwinHTTP",
                "DTwinInspect",
                "DTwinTwilio",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                "DTwinConfig",
                "DTwinContract",
                "DTwinMQTT",
                "DTwinSpool",
                "DTwinStore",
                "DTwinTestSupport",
                "DTwinUpstream",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
