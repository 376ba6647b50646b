import DTwinAWS
import Testing

/// The standard AWS lookup: environment first, then the profile in the shared files.
@Suite struct AWSEnvironmentTests {
    static let credentialsFile = """
        # a comment
        [default]
        aws_access_key_id = AKIDDEFAULT
        aws_secret_access_key = secret-default

        [lab]
        aws_access_key_id=AKIDLAB
        aws_secret_access_key=secret-lab
        aws_session_token = token-lab
        ; another comment
        [half]
        aws_access_key_id = AKIDHALF
        """
    static let configFile = """
        [default]
        region = eu-west-1
        [profile lab]
        region = us-west-2
        [profile keys-in-config]
        aws_access_key_id = AKIDCONFIG
        aws_secret_access_key = secret-config
        """

    func resolve(_ environment: [String: String]) throws(AWSError) -> AWSEnvironment {
        var environment = environment
        environment["HOME"] = "/home/test"
        return try AWSEnvironment.resolve(environment) { path in
            switch path {
            case "/home/test/.aws/credentials": Self.credentialsFile
            case "/home/test/.aws/config": Self.configFile
            default: nil
            }
        }
    }

    @Test func theEnvironmentComesFirst() throws {
        let found = try resolve([
            "AWS_ACCESS_KEY_ID": "AKIDENV", "AWS_SECRET_ACCESS_KEY": "secret-env", "AWS_SESSION_TOKEN": "token-env",
            "AWS_REGION": "ap-south-1", "AWS_PROFILE": "lab",
        ])
        #expect(found.credentials == AWSCredentials(accessKeyId: "AKIDENV", secretAccessKey: "secret-env", sessionToken: "token-env"))
        #expect(found.region == "ap-south-1")
        #expect(found.credentialsSource == "environment")
    }

    @Test func theDefaultProfileFromTheFiles() throws {
        let found = try resolve([:])
        #expect(found.credentials == AWSCredentials(accessKeyId: "AKIDDEFAULT", secretAccessKey: "secret-default"))
        #expect(found.region == "eu-west-1")
        #expect(found.credentialsSource.contains("profile default"))
    }

    @Test func aNamedProfileWithItsTokenAndItsConfigSection() throws {
        let found = try resolve(["AWS_PROFILE": "lab", "AWS_DEFAULT_REGION": ""])
        #expect(found.credentials == AWSCredentials(accessKeyId: "AKIDLAB", secretAccessKey: "secret-lab", sessionToken: "token-lab"))
        #expect(found.region == "us-west-2")
        let fromConfig = try resolve(["AWS_PROFILE": "keys-in-config"])
        #expect(fromConfig.credentials?.accessKeyId == "AKIDCONFIG")
        #expect(fromConfig.credentialsSource.hasSuffix("/home/test/.aws/config"))
    }

    @Test func otherFilesByTheirVariables() throws {
        let found = try AWSEnvironment.resolve(["AWS_SHARED_CREDENTIALS_FILE": "/etc/creds", "AWS_CONFIG_FILE": "/etc/conf", "HOME": "/nowhere"]) {
            $0 == "/etc/creds" ? "[default]\naws_access_key_id=A\naws_secret_access_key=B" : ($0 == "/etc/conf" ? "[default]\nregion=sa-east-1" : nil)
        }
        #expect(found.credentials?.accessKeyId == "A")
        #expect(found.region == "sa-east-1")
    }

    @Test func nothingAnywhereIsNoCredentials() throws {
        let found = try AWSEnvironment.resolve(["HOME": "/nowhere"]) { _ in nil }
        #expect(found.credentials == nil)
        #expect(found.region == nil)
    }

    @Test func halfAPairOrAMissingProfileIsAClearError() {
        for (environment, words) in [
            (["AWS_ACCESS_KEY_ID": "AKIDENV"], "AWS_SECRET_ACCESS_KEY"),
            (["AWS_SECRET_ACCESS_KEY": "secret-env"], "AWS_ACCESS_KEY_ID"),
            (["AWS_PROFILE": "half"], "needs both"),
            (["AWS_PROFILE": "nobody"], "\"nobody\""),
        ] {
            do {
                _ = try resolve(environment)
                Issue.record("accepted \(environment)")
            } catch {
                #expect(error.code == .badCredentials)
                #expect(error.message.contains(words), "\(error)")
                #expect(!error.message.contains("secret-env"))
            }
        }
    }

    @Test func theDescriptionNeverShowsTheSecretOrTheToken() {
        let credentials = AWSCredentials(accessKeyId: "AKIDX", secretAccessKey: "very-secret", sessionToken: "token-secret")
        #expect(!"\(credentials)".contains("very-secret"))
        #expect(!"\(credentials)".contains("token-secret"))
        #expect("\(credentials)".contains("AKIDX"))
    }
}
