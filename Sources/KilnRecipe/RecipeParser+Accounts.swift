import Foundation
import KilnOCI
import Yams

/// Users, groups, environment and ports: the sections that become /etc/passwd, /etc/group and the config.
extension RecipeParser {
    mutating func users(_ node: Node) -> [UserSpec] {
        (sequence(node, "users") ?? []).compactMap { item in
            guard let fields = mapping(item, "a user", allowed: ["name", "uid", "gid", "home", "shell"]) else {
                return nil
            }
            let value = { (key: String) in fields.first { $0.key == key }?.value }
            guard let name = value("name").flatMap({ accountName($0, "user name") }),
                let uid = value("uid").flatMap({ id($0, "uid") })
            else {
                // A present but invalid value has been reported where it is.
                if value("name") == nil || value("uid") == nil {
                    report(item, "a user needs `name` and `uid`", hint: "write `name: komodo` and `uid: 3003`")
                }
                return nil
            }
            return UserSpec(
                name: name, uid: uid, gid: value("gid").flatMap { id($0, "gid") } ?? uid,
                home: value("home").flatMap { accountPath($0, "home") } ?? "/home/\(name)",
                shell: value("shell").flatMap { accountPath($0, "shell") } ?? "/sbin/nologin", location: loc(item))
        }
    }

    mutating func groups(_ node: Node) -> [GroupSpec] {
        (sequence(node, "groups") ?? []).compactMap { item in
            guard let fields = mapping(item, "a group", allowed: ["name", "gid", "members"]) else { return nil }
            let value = { (key: String) in fields.first { $0.key == key }?.value }
            guard let name = value("name").flatMap({ accountName($0, "group name") }),
                let gid = value("gid").flatMap({ id($0, "gid") })
            else {
                // A present but invalid value has been reported where it is.
                if value("name") == nil || value("gid") == nil {
                    report(item, "a group needs `name` and `gid`", hint: "write `name: komodo` and `gid: 3003`")
                }
                return nil
            }
            return GroupSpec(
                name: name, gid: gid,
                members: value("members").flatMap { node in
                    stringList(node, "members")?.compactMap { accountName(node, "member", $0) }
                } ?? [],
                location: loc(item))
        }
    }

    mutating func env(_ node: Node) -> [String]? {
        switch node {
        case .mapping:
            guard let fields = mapping(node, "env", allowed: nil) else { return nil }
            return fields.compactMap { key, _, value in string(value, "env value").map { "\(key)=\($0)" } }
        case .sequence:
            return (stringList(node, "env") ?? []).compactMap { entry in
                guard let eq = entry.firstIndex(of: "="), eq != entry.startIndex else {
                    report(node, "env entry '\(entry)' is not NAME=value", hint: "write `- NAME=value`, or use a map")
                    return nil
                }
                return entry
            }
        default:
            report(node, "env must be a map or a list", hint: "write `env: {NAME: value}`")
            return nil
        }
    }

    mutating func ports(_ node: Node) -> [String: EmptyObject]? {
        guard let list = stringList(node, "ports") else { return nil }
        var result: [String: EmptyObject] = [:]
        for item in list {
            let parts = item.split(separator: "/", maxSplits: 1).map(String.init)
            guard let first = parts.first, let number = Int(first), (1...65535).contains(number),
                parts.count == 1 || ["tcp", "udp", "sctp"].contains(parts[1])
            else {
                report(
                    node, "'\(item)' is not a port",
                    hint: "write a number 1-65535, optionally with /tcp or /udp: `7770/tcp`")
                continue
            }
            result["\(number)/\(parts.count == 2 ? parts[1] : "tcp")"] = EmptyObject()
        }
        return result
    }
}
