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

extension Accounts {
    /// The accounts layer of `recipe`: /etc/passwd, /etc/group and home directories for its users, including
    /// those its base recipes declared (the files are written whole, so they must list them too). `chain` is
    /// the recipe and its bases, nearest first. Nil when the recipe declares no users or groups.
    static func entries(for recipe: Recipe, chain: [Recipe]) -> [LayerEntry]? {
        guard !recipe.users.isEmpty || !recipe.groups.isEmpty else { return nil }
        var users: [User] = []
        var groups: [Group] = []
        for r in chain.reversed() {
            for u in r.users {
                users.removeAll { $0.name == u.name }
                users.append(.init(name: u.name, uid: u.uid, gid: u.gid, home: u.home, shell: u.shell))
            }
            for g in r.groups {
                groups.removeAll { $0.name == g.name }
                groups.append(.init(name: g.name, gid: g.gid, members: g.members))
            }
        }
        // Every user's primary group exists, named after the user unless declared.
        for u in users where !groups.contains(where: { $0.gid == u.gid }) && u.gid != 0 && u.gid != 65534 {
            groups.append(.init(name: u.name, gid: u.gid))
        }
        var entries = [
            LayerEntry(path: "/etc/passwd", kind: .file(.bytes(Data(passwd(users).utf8))), mode: 0o644),
            LayerEntry(path: "/etc/group", kind: .file(.bytes(Data(group(groups).utf8))), mode: 0o644),
        ]
        // A home directory a `dirs:` entry of the recipe (or a base) declares is left to that entry: its mode and
        // owner win over the 0755 and user:group the accounts layer would otherwise write over them.
        let declared = Set(
            chain.flatMap { $0.layers.flatMap(\.items) }.compactMap { item -> String? in
                guard case .directory(let directory) = item else { return nil }
                return normalized(directory.path)
            })
        for u in recipe.users where !declared.contains(normalized(u.home)) {
            entries.append(LayerEntry(path: u.home, kind: .directory, mode: 0o755, uid: u.uid, gid: u.gid))
        }
        return entries
    }

    /// `/home/x/` and `/home/x` are one directory.
    static func normalized(_ path: String) -> String {
        var path = path
        while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
        return path
    }
}
