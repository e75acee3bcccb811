import Foundation
import KilnOCI

/// `kiln deploy-refs`: a release's images as digest references, plain or as deployment files. Every image is
/// addressed `REGISTRY/REPOSITORY@sha256:…`, never by tag, so a deployment runs exactly what was released.
/// The output depends only on the release and the image configs (sorted, no timestamps of its own).
public enum DeployRefs {
    public enum Format: String, Sendable, CaseIterable, Codable {
        case refs, compose, kubernetes
    }

    /// What a deployment needs from one image's config.
    public struct Service: Sendable, Equatable {
        public var name: String
        public var reference: String
        /// `7770/tcp`, sorted by number then protocol.
        public var ports: [Port]
        /// Absolute paths, sorted.
        public var volumes: [String]
        public var stopSignal: String?

        public init(name: String, reference: String, config: ImageConfig?) {
            self.name = name
            self.reference = reference
            let exec = config?.config
            ports = (exec?.exposedPorts ?? [:]).keys.compactMap(Port.init(parsing:)).sorted()
            volumes = (exec?.volumes ?? [:]).keys.sorted()
            stopSignal = exec?.stopSignal
        }
    }

    public struct Port: Sendable, Hashable, Comparable {
        public var number: Int
        public var proto: String

        init?(parsing text: String) {
            let parts = text.split(separator: "/").map(String.init)
            guard let first = parts.first, let number = Int(first), (1...65535).contains(number) else { return nil }
            self.number = number
            proto = parts.count > 1 ? parts[1].lowercased() : "tcp"
        }

        public static func < (a: Port, b: Port) -> Bool { (a.number, a.proto) < (b.number, b.proto) }
    }

    public static func render(_ document: ReleaseDocument, services: [Service], format: Format) -> String {
        switch format {
        case .refs: return services.map { $0.reference + "\n" }.joined()
        case .compose: return compose(document, services)
        case .kubernetes: return kubernetes(document, services)
        }
    }

    /// A quoted YAML scalar (JSON string syntax is valid YAML double-quoted syntax).
    static func q(_ text: String) -> String {
        let data = (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8)
        return String(decoding: data, as: UTF8.self).replacingOccurrences(of: "\\/", with: "/")
    }

    /// `/home/komodo/.komodo` → `home-komodo-komodo`: a DNS-1123 label fragment.
    static func slug(_ text: String) -> String {
        var out = ""
        for c in text.lowercased() {
            if c.isASCII && (c.isLetter || c.isNumber) {
                out.append(c)
            } else if !out.isEmpty && !out.hasSuffix("-") {
                out.append("-")
            }
        }
        while out.hasSuffix("-") { out.removeLast() }
        return out.isEmpty ? "x" : out
    }

    static func label(_ text: String, max: Int = 63) -> String {
        var s = String(slug(text).prefix(max))
        while s.hasSuffix("-") { s.removeLast() }
        return s
    }

    static func header(_ document: ReleaseDocument, _ format: Format) -> String {
        "# kiln deploy-refs \(document.version) --format \(format.rawValue): every image pinned by digest\n"
    }

    static func compose(_ document: ReleaseDocument, _ services: [Service]) -> String {
        var out = header(document, .compose)
        var volumes: [String] = []
        out += "services:\n"
        for service in services {
            out += "  \(q(service.name)):\n"
            out += "    image: \(q(service.reference))\n"
            out += "    restart: \"unless-stopped\"\n"
            if let signal = service.stopSignal { out += "    stop_signal: \(q(signal))\n" }
            if !service.ports.isEmpty {
                out += "    ports:\n"
                for port in service.ports { out += "      - \(q("\(port.number):\(port.number)/\(port.proto)"))\n" }
            }
            if !service.volumes.isEmpty {
                out += "    volumes:\n"
                for path in service.volumes {
                    let volume = "\(slug(service.name))-\(slug(path))"
                    volumes.append(volume)
                    out += "      - \(q("\(volume):\(path)"))\n"
                }
            }
        }
        if !volumes.isEmpty {
            out += "volumes:\n"
            for volume in volumes.sorted() { out += "  \(q(volume)): {}\n" }
        }
        return out
    }

    static func kubernetes(_ document: ReleaseDocument, _ services: [Service]) -> String {
        var docs: [String] = []
        for service in services {
            let name = label(service.name)
            let labels = "      app.kubernetes.io/name: \(q(name))\n"
            var svc = "apiVersion: v1\nkind: Service\nmetadata:\n  name: \(q(name))\n  labels:\n"
            svc += labels.replacingOccurrences(of: "      ", with: "    ")
            svc += "spec:\n  clusterIP: None\n  selector:\n"
            svc += labels.replacingOccurrences(of: "      ", with: "    ")
            if !service.ports.isEmpty {
                svc += "  ports:\n"
                for port in service.ports {
                    svc += "    - name: \(q("\(port.proto)-\(port.number)"))\n"
                    svc += "      port: \(port.number)\n      targetPort: \(port.number)\n"
                    svc += "      protocol: \(q(port.proto.uppercased()))\n"
                }
            }
            docs.append(svc)

            var set = "apiVersion: apps/v1\nkind: StatefulSet\nmetadata:\n  name: \(q(name))\n  labels:\n"
            set += labels.replacingOccurrences(of: "      ", with: "    ")
            set += "spec:\n  serviceName: \(q(name))\n  replicas: 1\n  selector:\n    matchLabels:\n"
            set += labels
            set += "  template:\n    metadata:\n      labels:\n"
            set += labels.replacingOccurrences(of: "      ", with: "        ")
            set += "    spec:\n      containers:\n"
            set += "        - name: \(q(name))\n          image: \(q(service.reference))\n"
            if !service.ports.isEmpty {
                set += "          ports:\n"
                for port in service.ports {
                    set += "            - name: \(q("\(port.proto)-\(port.number)"))\n"
                    set += "              containerPort: \(port.number)\n"
                    set += "              protocol: \(q(port.proto.uppercased()))\n"
                }
            }
            let claims = service.volumes.map { (path: $0, claim: label($0)) }
            if !claims.isEmpty {
                set += "          volumeMounts:\n"
                for claim in claims {
                    set += "            - name: \(q(claim.claim))\n              mountPath: \(q(claim.path))\n"
                }
                set += "  volumeClaimTemplates:\n"
                for claim in claims {
                    set += "    - metadata:\n        name: \(q(claim.claim))\n"
                    set += "      spec:\n        accessModes: [\"ReadWriteOnce\"]\n"
                    set += "        resources:\n          requests:\n            storage: \"10Gi\"\n"
                }
            }
            docs.append(set)
        }
        return header(document, .kubernetes) + docs.map { "---\n" + $0 }.joined()
    }
}
