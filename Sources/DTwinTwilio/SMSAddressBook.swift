import DTwinContract

/// Who may command which device by SMS (`devices.<dev>.phones`), and who receives its SMS.
public struct SMSAddressBook: Sendable, Equatable {
    public let phonesByDevice: [DeviceName: Set<PhoneNumber>]

    public init(phonesByDevice: [DeviceName: Set<PhoneNumber>]) {
        self.phonesByDevice = phonesByDevice
    }

    /// The devices `phone` may command, in name order.
    public func devices(for phone: PhoneNumber) -> [DeviceName] {
        phonesByDevice.filter { $0.value.contains(phone) }.keys.sorted()
    }

    public func phones(of device: DeviceName) -> [PhoneNumber] {
        (phonesByDevice[device] ?? []).sorted()
    }

    public func may(_ phone: PhoneNumber, command device: DeviceName) -> Bool {
        phonesByDevice[device]?.contains(phone) ?? false
    }
}
