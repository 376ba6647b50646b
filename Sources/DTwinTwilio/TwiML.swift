/// The TwiML answers the SMS webhook gives, byte for byte what twilio-python's
/// `MessagingResponse` produces.
public enum TwiML {
    public static let contentType = "text/xml; charset=utf-8"

    private static let declaration = #"<?xml version="1.0" encoding="UTF-8"?>"#

    /// No reply SMS.
    public static let empty = declaration + "<Response />"

    /// One reply SMS with `text`.
    public static func message(_ text: String) -> String {
        declaration + "<Response><Message>" + escape(text) + "</Message></Response>"
    }

    /// XML text content: `&`, `<`, `>` escaped; characters XML 1.0 forbids dropped.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\t", "\n", "\r": out.unicodeScalars.append(scalar)
            case _ where scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF: continue
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
