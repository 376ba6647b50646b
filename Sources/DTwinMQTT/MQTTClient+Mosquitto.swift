import CMosquitto
import Foundation
import Logging
import Synchronization

// C callbacks. libmosquitto calls them on the client's network thread with the `obj` pointer
// set by `mosquitto_user_data_set`: an unretained `MQTTClient`, which the network thread keeps
// alive. They are file-level functions, not closures in main-actor code: a closure written in
// top-level (main-actor) code compiles without a warning and then dies with SIGILL on its first
// call from libmosquitto's thread, where the runtime's isolation check fails.

private func client(_ obj: UnsafeMutableRawPointer?) -> MQTTClient? {
    obj.map { Unmanaged<MQTTClient>.fromOpaque($0).takeUnretainedValue() }
}

// The v5 callbacks: libmosquitto calls them for MQTT 3.1.1 connections too (reason code 0 or
// the 3.1.1 CONNACK code), and only they carry a PUBACK's reason code.
private func onConnect(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32, _ flags: Int32, _: OpaquePointer?) {
    client(obj)?.handleConnect(rc)
}

private func onDisconnect(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ rc: Int32) {
    client(obj)?.handleDisconnect(rc)
}

private func onPublish(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ mid: Int32, _ reasonCode: Int32, _: OpaquePointer?) {
    client(obj)?.handlePublishAcknowledged(mid, reasonCode: reasonCode)
}

private func onMessage(_: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ message: UnsafePointer<mosquitto_message>?) {
    guard let message, let client = client(obj) else { return }
    let raw = message.pointee
    // Copy now: libmosquitto frees topic and payload when this callback returns.
    let topic = raw.topic.map { String(cString: $0) } ?? ""
    let payload: [UInt8]
    if let bytes = raw.payload, raw.payloadlen > 0 {
        payload = Array(UnsafeRawBufferPointer(start: bytes, count: Int(raw.payloadlen)))
    } else {
        payload = []
    }
    client.handleMessage(
        MQTTMessage(topic: topic, payload: payload, qos: raw.qos > 0 ? .atLeastOnce : .atMostOnce, retain: raw.retain))
}

private func onSubscribe(
    _: OpaquePointer?, _ obj: UnsafeMutableRawPointer?, _ mid: Int32, _ count: Int32, _ granted: UnsafePointer<Int32>?
) {
    // 0x80 is the SUBACK failure code (MQTT 3.1.1 §3.9.3).
    let refused = (0..<Int(max(count, 0))).contains { granted?[$0] ?? 0x80 >= 0x80 }
    client(obj)?.handleSubscribeAcknowledged(mid, granted: !refused)
}

extension MQTTClient {
    // MARK: set-up

    func configure() throws(MQTTError) {
        let pointer = handle.pointer
        func check(_ rc: Int32, _ what: String) throws(MQTTError) {
            if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError.mosquitto(rc, errno: errno, context: what) }
        }
        try check(mosquitto_threaded_set(pointer, true), "setting threaded mode")
        try check(mosquitto_int_option(pointer, MOSQ_OPT_TCP_NODELAY, 1), "disabling Nagle")
        try check(mosquitto_max_inflight_messages_set(pointer, UInt32(max(0, configuration.maxInflight))), "setting max inflight")
        if let username = configuration.username {
            try check(mosquitto_username_pw_set(pointer, username, configuration.password), "setting credentials")
        }
        if let tls = configuration.tls {
            if let caFile = tls.caFile {
                guard FileManager.default.isReadableFile(atPath: caFile) else {
                    throw MQTTError(.tls, "the CA file \(caFile.debugDescription) does not exist or is not readable")
                }
                try check(mosquitto_tls_set(pointer, caFile, nil, nil, nil, nil), "loading the CA file \(caFile)")
            } else {
                try check(mosquitto_int_option(pointer, MOSQ_OPT_TLS_USE_OS_CERTS, 1), "using the system CA store")
            }
        }
        if let will = configuration.will {
            let rc = will.payload.withUnsafeBytes {
                mosquitto_will_set(pointer, will.topic, Int32($0.count), $0.baseAddress, will.qos.rawValue, will.retain)
            }
            try check(rc, "setting the last will on \(will.topic)")
        }
        mosquitto_user_data_set(pointer, Unmanaged.passUnretained(self).toOpaque())
        mosquitto_connect_v5_callback_set(pointer, onConnect)
        mosquitto_disconnect_callback_set(pointer, onDisconnect)
        mosquitto_publish_v5_callback_set(pointer, onPublish)
        mosquitto_message_callback_set(pointer, onMessage)
        mosquitto_subscribe_callback_set(pointer, onSubscribe)
    }

    func setProtocolVersion(_ version: MQTTClientConfiguration.ProtocolVersion) throws(MQTTError) {
        let value = version == .v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311
        let rc = mosquitto_int_option(handle.pointer, MOSQ_OPT_PROTOCOL_VERSION, value)
        if rc != MOSQ_ERR_SUCCESS.rawValue { throw MQTTError.mosquitto(rc, errno: errno, context: "setting the MQTT version") }
    }

    // MARK: calls into libmosquitto

    /// Opens the connection. MQTT 5 ends a session when the connection does unless CONNECT
    /// says how long to keep it: a persistent session asks for "never expire", which is what
    /// MQTT 3.1.1's clean-session-off means.
    func connectNow() -> Int32 {
        let pointer = handle.pointer
        let (host, port, keepAlive) = (configuration.host, Int32(configuration.port), Int32(configuration.keepAliveSeconds))
        guard state.withLock({ $0.protocolVersion }) == .v5, !configuration.cleanSession else {
            return mosquitto_connect(pointer, host, port, keepAlive)
        }
        var properties: OpaquePointer?
        defer { mosquitto_property_free_all(&properties) }
        let rc = mosquitto_property_add_int32(&properties, Int32(MQTT_PROP_SESSION_EXPIRY_INTERVAL.rawValue), UInt32.max)
        guard rc == MOSQ_ERR_SUCCESS.rawValue else { return rc }
        return mosquitto_connect_bind_v5(pointer, host, port, keepAlive, nil, properties)
    }

    func publishNow(topic: String, payload: [UInt8], qos: MQTTQoS, retain: Bool) throws(MQTTError) -> Int32 {
        guard payload.count <= Int(Int32.max) else {
            throw MQTTError(.invalidArgument, "payload of \(payload.count) bytes is too large for MQTT")
        }
        var mid: Int32 = 0
        let rc = payload.withUnsafeBytes {
            mosquitto_publish(handle.pointer, &mid, topic, Int32($0.count), $0.baseAddress, qos.rawValue, retain)
        }
        // Without a connection libmosquitto keeps a QoS 1 or 2 message all the same, answers
        // MOSQ_ERR_NO_CONN, and sends it once it has reconnected (lib/actions.c, 2.0.11): that
        // is a publish under way, not a failure. Reported as one, it was published again by the
        // caller, and the broker got both.
        let queued = rc == MOSQ_ERR_NO_CONN.rawValue && qos != .atMostOnce
        guard rc == MOSQ_ERR_SUCCESS.rawValue || queued else {
            throw MQTTError.mosquitto(rc, errno: errno, context: "publishing to \(topic)")
        }
        wakeup.wake()
        return mid
    }

    func sendSubscribe(_ filter: String, qos: MQTTQoS) {
        var mid: Int32 = 0
        let rc = mosquitto_subscribe(handle.pointer, &mid, filter, qos.rawValue)
        wakeup.wake()
        guard rc == MOSQ_ERR_SUCCESS.rawValue else {
            let error = MQTTError.mosquitto(rc, errno: errno, context: "subscribing to \(filter)")
            logger.error("MQTT subscribe failed", metadata: ["filter": "\(filter)", "error": "\(error)"])
            if error.code == .invalidArgument {
                updateState { state in
                    state.subscriptions[filter]?.granted = false
                }
            }
            return
        }
        // The SUBACK may already have been handled on the network thread.
        updateState { state in
            if let granted = state.earlySubacks.removeValue(forKey: mid) {
                state.subscriptions[filter]?.granted = granted
            } else {
                state.subscribeRequests[mid] = filter
            }
        }
    }

    // MARK: callback handlers (network thread)

    func handleConnect(_ rc: Int32) {
        // A broker that does not speak MQTT 5 says so (5: reason 132; 3.1.1: return code 1).
        let unsupported = rc == Int32(MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION.rawValue) || rc == 1
        if unsupported,
            updateState({ state -> Bool in
                guard state.protocolVersion == .v5 else { return false }
                state.protocolVersion = .v311
                return true
            })
        {
            logger.notice(
                "the broker does not speak MQTT 5; using MQTT 3.1.1, where a publish it refuses is dropped without a word",
                metadata: ["broker": "\(configuration.endpointDescription)"])
            return
        }
        guard rc == 0 else {
            let error = MQTTError.connack(rc, endpoint: configuration.endpointDescription)
            updateState { $0.lastError = error }
            logger.error("MQTT connection refused", metadata: ["broker": "\(configuration.endpointDescription)", "reason": "\(error)"])
            return
        }
        let filters = updateState { state -> [(String, MQTTQoS)] in
            state.lifecycle.setConnected(true)
            state.lastError = nil
            for key in state.subscriptions.keys { state.subscriptions[key]?.granted = nil }
            return state.subscriptions.map { ($0.key, $0.value.qos) }.sorted { $0.0 < $1.0 }
        }
        logger.info("MQTT connected", metadata: ["broker": "\(configuration.endpointDescription)", "clientId": "\(configuration.clientID)"])
        for (filter, qos) in filters { sendSubscribe(filter, qos: qos) }
        if let birth = configuration.birth {
            do {
                try publishWithoutWaiting(topic: birth.topic, payload: birth.payload, qos: birth.qos, retain: birth.retain)
            } catch {
                logger.error("MQTT birth message not published", metadata: ["topic": "\(birth.topic)", "error": "\(error)"])
            }
        }
    }

    func handleDisconnect(_ rc: Int32) {
        let stopping = updateState { state -> Bool in
            let wasConnected = state.lifecycle.isConnected
            state.lifecycle.setConnected(false)
            guard rc != 0 && !state.lifecycle.isStopping else { return state.lifecycle.isStopping }
            let endpoint = configuration.endpointDescription
            if wasConnected {
                state.lastError = MQTTError(.notConnected, "lost the connection to \(endpoint)")
            } else if state.lastError?.isConfigurationProblem != true {
                // Closed before any CONNACK (a refusal has said why already): most often a TLS
                // client on a plain port or the other way round, or a TLS handshake that failed.
                state.lastError =
                    configuration.tls != nil
                    ? MQTTError(.tls, "connection to \(endpoint): closed during the TLS handshake (is this a TLS port? check the CA)")
                    : MQTTError(.unreachable, "connection to \(endpoint): closed before the broker answered (a TLS port needs mqtts://)")
            }
            return state.lifecycle.isStopping
        }
        if rc != 0 && !stopping {
            logger.warning("MQTT connection lost; reconnecting", metadata: ["broker": "\(configuration.endpointDescription)"])
        }
    }

    func handleMessage(_ message: MQTTMessage) {
        if let handler = state.withLock({ $0.messageHandler }) {
            handler(message)
        } else {
            continuation.yield(message)
        }
    }

    func handlePublishAcknowledged(_ mid: Int32, reasonCode: Int32) {
        let waiter = state.withLock { $0.acknowledgements.acknowledged(mid, reasonCode: reasonCode) }
        waiter?.settle(reasonCode: reasonCode)
        if reasonCode >= 128 && waiter == nil {
            // Nobody waits (publishWithoutWaiting): the refusal must still not pass in silence.
            logger.error("the broker refused a publish", metadata: ["error": "\(MQTTError.publishRefused(reasonCode, topic: nil))"])
        }
    }

    func handleSubscribeAcknowledged(_ mid: Int32, granted: Bool) {
        let filter = updateState { state -> String? in
            guard let filter = state.subscribeRequests.removeValue(forKey: mid) else {
                state.earlySubacks[mid] = granted
                return nil
            }
            state.subscriptions[filter]?.granted = granted
            return filter
        }
        if let filter, !granted {
            logger.error("MQTT subscription refused by the broker (check its ACL)", metadata: ["filter": "\(filter)"])
        }
    }

    // MARK: the network thread

    /// Connects, runs libmosquitto's loop, reconnects with backoff; returns after `close()`.
    func runNetworkLoop() {
        let pointer = handle.pointer
        var socketOpen = false
        var failures = 0
        var unreachable = RepeatingWarning()
        var nextSweep = ContinuousClock.now
        while !shouldStopLoop() {
            let now = ContinuousClock.now
            if now >= nextSweep {
                expireWaiters(now: now)
                nextSweep = now + .milliseconds(100)
            }
            if !socketOpen {
                let version = state.withLock { $0.protocolVersion }
                do throws(MQTTError) { try setProtocolVersion(version) } catch {
                    logger.error("MQTT version not set", metadata: ["error": "\(error)"])
                }
                let rc = connectNow()
                if rc == MOSQ_ERR_SUCCESS.rawValue {
                    socketOpen = true
                    unreachable.reset()
                } else {
                    let error = MQTTError.mosquitto(rc, errno: errno, context: "connecting to \(configuration.endpointDescription)")
                    updateState { $0.lastError = error }
                    if unreachable.shouldWarn(now: .now) { warnUnreachable(error, failures: failures) }
                    failures += 1
                    backoff(failures: failures)
                }
                continue
            }
            let rc = loopOnce(timeoutMillis: 100)
            if rc != MOSQ_ERR_SUCCESS.rawValue {
                socketOpen = false
                let wasConnected = updateState { state -> Bool in
                    defer { state.lifecycle.setConnected(false) }
                    if state.lastError == nil && !state.lifecycle.isStopping {
                        state.lastError = MQTTError.mosquitto(rc, errno: errno, context: "connection to \(configuration.endpointDescription)")
                    }
                    return state.lifecycle.isConnected
                }
                if wasConnected { failures = 0 }
                failures += 1
                if !shouldStopLoop() { backoff(failures: failures) }
            }
        }
        if socketOpen { mosquitto_disconnect(pointer) }
        finish()
    }

    /// One turn of libmosquitto's loop: what `mosquitto_loop` does, with `poll(2)` instead of
    /// `select(2)`. `select` cannot watch a descriptor numbered 1024 or above (FD_SETSIZE), and
    /// `mosquitto_loop` refuses such a socket with MOSQ_ERR_INVAL: a process with many open
    /// connections (HTTP clients, upstream connections) could then never talk to its broker.
    func loopOnce(timeoutMillis: Int32) -> Int32 {
        let pointer = handle.pointer
        let success = Int32(MOSQ_ERR_SUCCESS.rawValue)
        let socket = mosquitto_socket(pointer)
        guard socket >= 0 else { return Int32(MOSQ_ERR_NO_CONN.rawValue) }
        let wantWrite = mosquitto_want_write(pointer)
        var fds = [
            pollfd(fd: socket, events: Int16(POLLIN) | (wantWrite ? Int16(POLLOUT) : 0), revents: 0),
            pollfd(fd: wakeup.readEnd, events: Int16(POLLIN), revents: 0),
        ]
        if poll(&fds, 2, timeoutMillis) < 0 {
            return errno == EINTR ? success : Int32(MOSQ_ERR_ERRNO.rawValue)
        }
        if fds[0].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            let rc = mosquitto_loop_read(pointer, 1)
            if rc != success || mosquitto_socket(pointer) < 0 { return rc }
        }
        var writable = fds[0].revents & Int16(POLLOUT) != 0
        if fds[1].revents & Int16(POLLIN) != 0 {
            wakeup.drain()
            // Something was queued after the poll began: try to write it now.
            writable = true
        }
        if writable {
            let rc = mosquitto_loop_write(pointer, 1)
            if rc != success || mosquitto_socket(pointer) < 0 { return rc }
        }
        return mosquitto_loop_misc(pointer)
    }

    private func shouldStopLoop() -> Bool {
        // Let a queued DISCONNECT (and anything before it) reach the broker first.
        state.withLock { $0.lifecycle.threadShouldEnd(now: .now) }
    }

    /// Said again with backoff (``RepeatingWarning``) for as long as the broker stays away.
    private func warnUnreachable(_ error: MQTTError, failures: Int) {
        var metadata: Logger.Metadata = [
            "broker": "\(configuration.endpointDescription)", "error": "\(error)", "attempts": "\(failures + 1)",
        ]
        if let hint = configuration.unreachableHint { metadata["hint"] = "\(hint)" }
        logger.warning("MQTT broker not reachable; retrying", metadata: metadata)
    }

    /// Sleeps the reconnect delay for this many consecutive failures, waking early on `close()`.
    private func backoff(failures: Int) {
        let (minimum, maximum) = configuration.reconnectDelay
        var delay = minimum
        for _ in 1..<max(1, min(failures, 20)) where delay < maximum { delay *= 2 }
        let end = ContinuousClock.now + min(delay, maximum)
        while ContinuousClock.now < end, !state.withLock({ $0.lifecycle.isStopping }) {
            Thread.sleep(forTimeInterval: 0.02)
        }
    }
}
