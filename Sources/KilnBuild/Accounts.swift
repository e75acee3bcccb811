import Foundation
import KilnLayer
import KilnRecipe

/// /etc/passwd and /etc/group for an image: root, nobody, and the recipe's users and groups.
/// Generated rather than copied so the files are the same bytes on every machine.
public enum Accounts {
    public struct User: Sendable, Hashable {
        public var name: String
        public var uid: Int
        public var gid: Int
        public var home: String
        public var shell: String
        public init(name: String, uid: Int, gid: Int, home: String, shell: String = "/sbin/nologin") {
            self.name = name
            self.uid = uid
            self.gid = gid
            self.home = home
            self.shell = shell
        }
    }

    public struct Group: Sendable, Hashable {
        public var name: String
        public var gid: Int
        public var members: [String]
        public init(name: String, gid: Int, members: [String] = []) {
            self.name = name
            self.gid = gid
            self.members = members
        }
    }

    static let systemUsers = [
        User(name: "root", uid: 0, gid: 0, home: "/root"),
        User(name: "nobody", uid: 65534, gid: 65534, home: "/nonexistent"),
    ]
    static let systemGroups = [Group(name: "root", gid: 0), Group(name: "nogroup", gid: 65534)]

    public static func passwd(_ users: [User]) -> String {
        (systemUsers + users.filter { u in !systemUsers.contains { $0.name == u.name } }).map {
            "\($0.name):x:\($0.uid):\($0.gid):\($0.name):\($0.home):\($0.shell)\n"
        }.joined()
    }

    public static func group(_ groups: [Group]) -> String {
        (systemGroups + groups.filter { g in !systemGroups.contains { $0.name == g.name } }).map {
            "\($0.name):x:\($0.gid):\($0.members.joined(separator: ","))\n"
        }.joined()
    }
}
