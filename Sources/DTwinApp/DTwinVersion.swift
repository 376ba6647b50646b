/// The version `dtwin --version` prints and the bridge logs at start.
public enum DTwinVersion {
    public static let current = "0.17.0"
}
