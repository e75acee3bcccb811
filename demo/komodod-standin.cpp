// STAND-IN for komodod, komodo-cli and iguana (tests and demo only; NOT the real programs). It links what
// komodod links (libstdc++, libgomp) and does just enough of what they do on a node to show the images and
// the deployment files work:
//   komodod [-ac_name=X] [-datadir=D] ...  reads the chain's conf (komodo.conf or X.conf) and, when it has
//       one, serves JSON-RPC on 127.0.0.1:rpcport with the conf's rpcuser/rpcpassword; an assetchain also
//       calls KMD's RPC on 127.0.0.1 with the credentials of ~/.komodo/komodo.conf, as komodod does.
//       Without a conf it prints its arguments and exits. SIGINT/SIGTERM: prints a line and exits 0.
//       `backupwallet NAME` writes a stand-in file NAME into the conf's exportdir, as komodod copies wallet.dat.
//   komodo-cli [-ac_name=X] [-datadir=D] METHOD [PARAM…]  calls the daemon's RPC the same way (string
//       parameters); exit 0 on success.
//   iguana  calls KMD's RPC with ~/.komodo/komodo.conf, then waits for a signal.
#include <arpa/inet.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <netinet/in.h>
#include <omp.h>
#include <string>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

struct Conf { std::string user, password, exportdir; int port = 0; bool found = false; };

static Conf readConf(const std::string &path) {
    Conf c; std::ifstream in(path); std::string line;
    while (std::getline(in, line)) {
        c.found = true;
        auto eq = line.find('='); if (eq == std::string::npos) continue;
        auto k = line.substr(0, eq), v = line.substr(eq + 1);
        if (k == "rpcuser") c.user = v; else if (k == "rpcpassword") c.password = v; else if (k == "rpcport") c.port = atoi(v.c_str());
        else if (k == "exportdir") c.exportdir = v;
    }
    return c;
}

static std::string base64(const std::string &s) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out; int val = 0, bits = -6;
    for (unsigned char c : s) { val = (val << 8) + c; bits += 8; while (bits >= 0) { out.push_back(t[(val >> bits) & 0x3F]); bits -= 6; } }
    if (bits > -6) out.push_back(t[((val << 8) >> (bits + 8)) & 0x3F]);
    while (out.size() % 4) out.push_back('=');
    return out;
}

// One JSON-RPC call to 127.0.0.1:port; returns the HTTP body, or "" when it failed or was refused.
static std::string call(const Conf &c, const std::string &method, const std::string &params = "") {
    int fd = socket(AF_INET, SOCK_STREAM, 0); sockaddr_in a{}; a.sin_family = AF_INET; a.sin_port = htons(c.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (sockaddr *)&a, sizeof a) != 0) { close(fd); return ""; }
    std::string body = "{\"jsonrpc\":\"1.0\",\"id\":\"standin\",\"method\":\"" + method + "\",\"params\":[" + params + "]}";
    std::string req = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic " + base64(c.user + ":" + c.password) +
        "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    if (write(fd, req.data(), req.size()) < 0) { close(fd); return ""; }
    std::string resp; char buf[4096]; ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, n);
    close(fd);
    if (resp.compare(0, 12, "HTTP/1.1 200") != 0) return "";
    auto p = resp.find("\r\n\r\n"); return p == std::string::npos ? "" : resp.substr(p + 4);
}

static volatile sig_atomic_t stopping = 0;
static void onSignal(int) { stopping = 1; }
static int peers = 0;

static void reachKMD(const std::string &home, const char *who) {
    for (int i = 0; i < 120 && !stopping; i++) {
        Conf kmd = readConf(home + "/.komodo/komodo.conf"); if (!kmd.port) kmd.port = 7771;
        if (kmd.found && !call(kmd, "getinfo").empty()) {
            printf("%s: reached KMD's RPC at 127.0.0.1:%d\n", who, kmd.port); fflush(stdout); peers = 1; return;
        }
        sleep(1);
    }
    printf("%s: KMD's RPC not reachable on 127.0.0.1\n", who); fflush(stdout);
}

int main(int argc, char **argv) {
    int threads = 0;
    #pragma omp parallel reduction(+:threads)
    threads += 1;
    std::string self = argv[0]; self = self.substr(self.rfind('/') + 1);
    std::string name = "KMD", datadir, method, params; const char *h = getenv("HOME"); std::string home = h ? h : "/";
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a.rfind("-ac_name=", 0) == 0) name = a.substr(9); else if (a.rfind("-datadir=", 0) == 0) datadir = a.substr(9);
        else if (a[0] != '-' && method.empty()) method = a;
        else if (a[0] != '-') params += (params.empty() ? "\"" : ",\"") + a + "\"";
    }
    std::string dir = !datadir.empty() ? datadir : (name == "KMD" ? home + "/.komodo" : home + "/.komodo/" + name);
    Conf conf = readConf(dir + "/" + (name == "KMD" ? std::string("komodo.conf") : name + ".conf"));
    struct sigaction sa{}; sa.sa_handler = onSignal; sigaction(SIGINT, &sa, nullptr); sigaction(SIGTERM, &sa, nullptr);
    if (self.find("-cli") != std::string::npos) {
        std::string body = conf.found ? call(conf, method.empty() ? "getinfo" : method, params) : "";
        if (body.empty()) { fprintf(stderr, "STAND-IN komodo-cli: no answer from %s on 127.0.0.1:%d\n", name.c_str(), conf.port); return 1; }
        printf("%s\n", body.c_str()); return 0;
    }
    if (self == "iguana") {
        printf("STAND-IN iguana (openmp %s)\n", threads > 0 ? "ok" : "broken"); fflush(stdout);
        reachKMD(home, "STAND-IN iguana");
        while (!stopping) pause();
        printf("STAND-IN iguana: stopped\n"); return 0;
    }
    printf("STAND-IN komodod (openmp %s)", threads > 0 ? "ok" : "broken");
    for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
    printf("\n"); fflush(stdout);
    if (!conf.found || !conf.port) return 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1; setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{}; a.sin_family = AF_INET; a.sin_port = htons(conf.port); a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) { perror("STAND-IN komodod: bind"); return 1; }
    printf("STAND-IN komodod %s: RPC on 127.0.0.1:%d\n", name.c_str(), conf.port); fflush(stdout);
    if (name != "KMD") std::thread([home, name] { reachKMD(home, ("STAND-IN komodod " + name).c_str()); }).detach();
    std::string expected = "Authorization: Basic " + base64(conf.user + ":" + conf.password);
    while (!stopping) {
        int c = accept(fd, nullptr, nullptr); if (c < 0) continue;
        char buf[8192]; ssize_t n = read(c, buf, sizeof buf - 1); std::string req(buf, n > 0 ? n : 0);
        std::string body = "{\"result\":" + std::to_string(peers) + ",\"error\":null,\"id\":\"standin\"}";
        auto backup = req.find("\"method\":\"backupwallet\",\"params\":[\"");
        if (backup != std::string::npos && !conf.exportdir.empty()) {
            auto from = backup + 35, to = req.find('"', from);
            std::string path = conf.exportdir + "/" + req.substr(from, to - from);
            std::ofstream(path) << "STAND-IN wallet.dat\n";
            body = "{\"result\":\"" + path + "\",\"error\":null,\"id\":\"standin\"}";
        }
        std::string resp = req.find(expected) != std::string::npos
            ? "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body
            : std::string("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n");
        if (write(c, resp.data(), resp.size()) < 0) perror("write");
        close(c);
    }
    printf("STAND-IN komodod %s: flushed, stopped\n", name.c_str()); return 0;
}
