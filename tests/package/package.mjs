// Installing rtgw: `cmake --install` into any prefix (relocatable: nothing
// installed points into the build tree), and the Debian package
// (`make package`): its metadata, lintian, its systemd unit, and a whole
// install → run as the rtgw user → upgrade → remove → purge cycle.
//
// The cycle installs into the real system (dpkg -i), so it runs only where
// that is wanted: CI=true (CI's throwaway machine) or RTGW_TEST_SYSTEM_INSTALL=1,
// as root, and never over an rtgw package it did not install; otherwise it is
// skipped (77). It removes the rtgw user it created, so a developer's machine is
// left as found. Needs: RTGW_BUILD_DIR (the build to install from).
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { defcase, run, Skip, requireNodeModules } from "../lib/harness.mjs";
import { startGateway, keygen, freePort, mint, publish } from "../lib/gateway.mjs";
import { selfSigned, httpsRequest } from "../lib/certs.mjs";
import { tmpDir } from "../lib/proc.mjs";
import { connect, wsUrl } from "../lib/ws.mjs";

requireNodeModules("ws");
const build = process.env.RTGW_BUILD_DIR;
const debDir = build && path.join(build, "package-test"); // package.deb_builds writes the .deb here
const sh = (cmd, args, opts = {}) => execFileSync(cmd, args, { encoding: "utf8", ...opts });

function theDeb() {
  const debs = fs.existsSync(debDir) ? fs.readdirSync(debDir).filter((f) => /^rtgw_.*\.deb$/.test(f)) : [];
  assert.equal(debs.length, 1, `one .deb in ${debDir} (package.deb_builds makes it): ${debs}`);
  return path.join(debDir, debs[0]);
}

// The libssl.so objects a running process has mapped.
const sslMaps = (pid) => [...new Set(fs.readFileSync(`/proc/${pid}/maps`, "utf8").split("\n")
  .map((l) => l.split(/\s+/)[5]).filter((f) => f && /\/libssl\.so/.test(f)))];

defcase("install_relocatable", async (t) => {
  const dir = tmpDir(t, "rtgw-install-");
  sh("cmake", ["--install", build, "--prefix", path.join(dir, "a")]);
  fs.renameSync(path.join(dir, "a"), path.join(dir, "moved")); // relocatable: the prefix moves
  const p = path.join(dir, "moved"), bin = path.join(p, "bin", "rtgw");
  for (const f of ["bin/rtgw", "share/doc/rtgw/README.md", "share/doc/rtgw/operations.md",
    "share/doc/rtgw/examples/nginx/rtgw.conf", "share/doc/rtgw/copyright", "lib/systemd/system/rtgw.service",
    "etc/rtgw/rtgw.env"])
    assert.ok(fs.existsSync(path.join(p, f)), `installed ${f}`);
  assert.ok(!fs.existsSync(path.join(p, "share/doc/rtgw/examples/CMakeLists.txt")), "no build files in examples");
  // No library search path at all: rtgw links only the system's libraries.
  const dyn = sh("readelf", ["-d", bin]);
  assert.doesNotMatch(dyn, /RUNPATH|RPATH/, dyn);
  assert.ok(!dyn.includes(build), "a path into the build tree");
  assert.match(sh(bin, ["version"]), /^rtgw \d+\.\d+\.\d+/);
  assert.match(sh(bin, ["--version"]), /^rtgw \d+\.\d+\.\d+/);
  // rtgw terminates TLS itself with the system's libssl.so.3 (civetweb loads no
  // OpenSSL): nothing else named libssl is mapped.
  const { key, cert } = selfSigned(dir, "ok");
  const gw = await startGateway(t, { bin, env: { RTGW_TLS_CERT: cert, RTGW_TLS_KEY: key } });
  const ca = fs.readFileSync(cert);
  const h = await httpsRequest(`https://localhost:${gw.port}/health`, { ca });
  assert.equal(h.status, 200);
  const ssl = sslMaps(gw.pid);
  assert.equal(ssl.length, 1, ssl.join(" "));
  assert.match(ssl[0], /^\/(usr\/)?lib\/[^/]+\/libssl\.so\.3$/);
  // A wss subscriber gets a published event, from the installed binary.
  const auth = { Authorization: `Bearer ${gw.key}` };
  const m = await httpsRequest(`https://localhost:${gw.port}/v1/realtime/token`,
    { ca, method: "POST", headers: auth, body: JSON.stringify([{ channel: "c", name: "t", kind: "run" }]) });
  assert.equal(m.status, 201, m.body);
  const tok = JSON.parse(m.body).jwt;
  const sub = await connect(wsUrl({ ws: `wss://localhost:${gw.port}` }, tok), { t, wsOpts: { ca } });
  const p1 = await httpsRequest(`https://localhost:${gw.port}/v1/realtime/publish?channel=c&topic=t`,
    { ca, method: "POST", headers: auth, body: '{"n":1}' });
  assert.equal(p1.status, 200, p1.body);
  assert.equal((await sub.next()).data.n, 1);
  sub.close();
  // The unit names the installed binary (as installed, before the move), and systemd accepts it.
  const unit = path.join(p, "lib/systemd/system/rtgw.service");
  const a = path.join(dir, "a");
  assert.match(fs.readFileSync(unit, "utf8"), new RegExp(`^ExecStart=${a}/bin/rtgw serve --env-file ${a}/etc/rtgw/rtgw.env$`, "m"));
  fs.renameSync(p, a);
  const v = spawnSync("systemd-analyze", ["verify", path.join(a, "lib/systemd/system/rtgw.service")], { encoding: "utf8" });
  assert.equal(v.status, 0, v.stdout + v.stderr);
});

defcase("install_destdir", async (t) => {
  const dir = tmpDir(t, "rtgw-install-");
  sh("cmake", ["--install", build, "--prefix", "/usr"], { env: { ...process.env, DESTDIR: dir } });
  for (const f of ["usr/bin/rtgw", "usr/share/doc/rtgw/README.md", "etc/rtgw/rtgw.env",
    "lib/systemd/system/rtgw.service"])
    assert.ok(fs.existsSync(path.join(dir, f)), `staged ${f}`);
  assert.equal(fs.statSync(path.join(dir, "etc/rtgw/rtgw.env")).mode & 0o777, 0o640);
  assert.match(fs.readFileSync(path.join(dir, "lib/systemd/system/rtgw.service"), "utf8"),
    /^ExecStart=\/usr\/bin\/rtgw serve --env-file \/etc\/rtgw\/rtgw.env$/m);
  // The staged copy runs.
  assert.match(sh(path.join(dir, "usr/bin/rtgw"), ["version"]), /^rtgw /);
});

defcase("deb_builds", async (t) => {
  fs.rmSync(debDir, { recursive: true, force: true });
  sh("cpack", ["-G", "DEB", "--config", path.join(build, "CPackConfig.cmake"), "-B", debDir]);
  const deb = theDeb();
  const info = sh("dpkg-deb", ["-I", deb]);
  // Depends from dpkg-shlibdeps: every library rtgw links, and adduser for postinst.
  const dep = info.match(/^ Depends: (.*)$/m)[1];
  for (const lib of ["adduser", "libc6", "libcivetweb1", "libsodium23", "libjansson4", "libhiredis", "libssl3"])
    assert.match(dep, new RegExp(`(^|, )${lib}`), `Depends has ${lib}: ${dep}`);
  assert.match(sh("dpkg-deb", ["-f", deb, "Package", "Version"]), /Package: rtgw\nVersion: \d+\.\d+\.\d+-1/);
  const ctl = tmpDir(t, "rtgw-deb-");
  sh("dpkg-deb", ["-e", deb, ctl]);
  assert.equal(fs.readFileSync(path.join(ctl, "conffiles"), "utf8").trim(), "/etc/rtgw/rtgw.env");
  const files = sh("dpkg-deb", ["-c", deb]);
  assert.match(files, /^-rw-r----- root\/root .* \.\/etc\/rtgw\/rtgw\.env$/m);
  for (const f of ["./usr/bin/rtgw", "./lib/systemd/system/rtgw.service",
    "./usr/share/doc/rtgw/copyright", "./usr/share/doc/rtgw/changelog.Debian.gz"])
    assert.ok(files.includes(` ${f}\n`), `the package holds ${f}`);
  assert.doesNotMatch(files, /rtgw_client/, "the C SDK is not part of the rtgw package");
  // Placeholders only.
  const data = tmpDir(t, "rtgw-deb-");
  sh("dpkg-deb", ["-x", deb, data]);
  const env = fs.readFileSync(path.join(data, "etc/rtgw/rtgw.env"), "utf8");
  assert.match(env, /^RTGW_SIGNING_KEY=signkey-prod-REPLACE_WITH_/m);
  assert.doesNotMatch(env, /signkey-\w+-[0-9a-f]{32,}/);
});

defcase("deb_lintian", async (t) => {
  const r = spawnSync("lintian", ["--fail-on", "error", "--no-tag-display-limit", theDeb()], { encoding: "utf8" });
  const tags = (r.stdout + r.stderr).trim();
  if (tags) console.log(`lintian says:\n${tags}`); // warnings stay visible in the log
  assert.equal(r.status, 0, `lintian errors:\n${tags}`);
  assert.doesNotMatch(tags, /^E: /m);
});

defcase("sdk_c_pkg_config", async (t) => {
  const dir = tmpDir(t, "rtgw-sdk-c-");
  sh("cmake", ["--install", build, "--component", "sdk", "--prefix", path.join(dir, "a")]);
  fs.renameSync(path.join(dir, "a"), path.join(dir, "p")); // rtgw_client.pc finds its prefix itself
  const p = path.join(dir, "p");
  for (const f of ["include/rtgw_client.h", "lib/librtgw_client.so", "lib/librtgw_client.so.0", "lib/pkgconfig/rtgw_client.pc"])
    assert.ok(fs.existsSync(path.join(p, f)), `installed ${f}`);
  // Only the API is exported.
  const syms = sh("nm", ["-D", "--defined-only", path.join(p, "lib/librtgw_client.so")]).trim().split("\n").map((l) => l.split(" ").pop());
  assert.ok(syms.includes("rtc_publish") && syms.includes("rtc_mint_local"));
  assert.deepEqual(syms.filter((s) => !s.startsWith("rtc_")), []);
  // examples/worker-c builds against the installed copy with pkg-config alone.
  const env = { ...process.env, PKG_CONFIG_PATH: path.join(p, "lib/pkgconfig") };
  const flags = sh("pkg-config", ["--cflags", "--libs", "rtgw_client"], { env }).trim().split(/\s+/);
  assert.equal(sh("pkg-config", ["--modversion", "rtgw_client"], { env }).trim(), sh(path.join(build, "rtgw"), ["version"]).split(/\s+/)[1]);
  const src = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../examples/worker-c/worker.c");
  const exe = path.join(dir, "worker");
  sh("cc", ["-std=c11", "-Wall", "-Werror", "-D_POSIX_C_SOURCE=200809L", "-o", exe, src, ...flags]);
  assert.match(sh("readelf", ["-d", exe]), /NEEDED.*\[librtgw_client\.so\.0\]/);
  // It runs with the installed library and publishes a whole run to a real gateway.
  const gw = await startGateway(t);
  const tok = await mint(gw, [{ channel: "user:9", name: "ai", kind: "run" }]);
  const sub = await connect(wsUrl(gw, tok), { t });
  const r = spawnSync(exe, ["--url", gw.url, "--channel", "user:9", "--topic", "ai", "--run-id", "r9", "--delay-ms", "1"],
    { env: { PATH: process.env.PATH, RTGW_SIGNING_KEY: gw.key, LD_LIBRARY_PATH: path.join(p, "lib") }, encoding: "utf8", timeout: 30000 });
  assert.equal(r.status, 0, r.stderr);
  for (;;) {
    const m = await sub.next(3000, "the run's events");
    if (m.kind === "data" && m.data.status === "finished") break;
  }
});

// ---- the whole cycle on the real system (guarded, see the top) ----

function systemInstallAllowed() {
  if (process.env.CI !== "true" && process.env.RTGW_TEST_SYSTEM_INSTALL !== "1")
    throw new Skip("installs into the system: set CI=true or RTGW_TEST_SYSTEM_INSTALL=1");
  if (process.getuid() !== 0) throw new Skip("dpkg -i needs root");
  const s = spawnSync("dpkg-query", ["-W", "-f=${Status}", "rtgw"], { encoding: "utf8" });
  if (/installed/.test(s.stdout) && !/not-installed/.test(s.stdout))
    throw new Skip("an rtgw package is already installed here; not touching it");
}

const userExists = () => spawnSync("getent", ["passwd", "rtgw"]).status === 0;

// The unit's ExecStart, run as the unit would: as rtgw:rtgw, no supplementary
// groups, no capabilities, no new privileges. { wrap, argv }.
function execStart() {
  const unit = fs.readFileSync("/lib/systemd/system/rtgw.service", "utf8");
  const argv = unit.match(/^ExecStart=(.*)$/m)[1].split(" ");
  const wrap = ["setpriv", "--reuid=rtgw", "--regid=rtgw", "--clear-groups", "--no-new-privs",
    "--inh-caps=-all", "--bounding-set=-all", "--"];
  return { wrap, argv };
}

defcase("deb_install_run_upgrade_purge", async (t) => {
  systemInstallAllowed();
  const deb = theDeb();
  const hadUser = userExists();
  t.cleanup(() => {
    spawnSync("dpkg", ["--purge", "rtgw"]);
    if (!hadUser && userExists()) spawnSync("deluser", ["--system", "rtgw"]);
  });
  sh("dpkg", ["-i", deb]);
  // From the PATH.
  assert.equal(sh("sh", ["-c", "command -v rtgw"]).trim(), "/usr/bin/rtgw");
  assert.match(sh("rtgw", ["version"]), /^rtgw \d+\.\d+\.\d+/);
  assert.ok(userExists(), "postinst made the rtgw user");
  assert.equal(sh("stat", ["-c", "%a %U %G", "/etc/rtgw/rtgw.env"]).trim(), "640 root rtgw");
  // systemd accepts the installed unit.
  const v = spawnSync("systemd-analyze", ["verify", "/lib/systemd/system/rtgw.service"], { encoding: "utf8" });
  assert.equal(v.status, 0, v.stdout + v.stderr);
  // Never configured: refuses, naming the variable, exit 2 (the unit does not restart it).
  const { wrap, argv } = execStart();
  assert.equal(argv[1], "serve");
  const r = spawnSync(wrap[0], [...wrap.slice(1), ...argv], { encoding: "utf8", timeout: 10000, env: { PATH: process.env.PATH } });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /RTGW_SIGNING_KEY: still the placeholder/);
  // Configured: serves /health as the rtgw user.
  const key = keygen("prod"), port = await freePort();
  const conf = `RTGW_SIGNING_KEY=${key}\nRTGW_LISTEN=127.0.0.1:${port}\n`;
  fs.writeFileSync("/etc/rtgw/rtgw.env", conf);
  const gw = await startGateway(t, { wrap, bin: argv[0], args: argv.slice(2), key: null, port });
  const h = await fetch(`http://127.0.0.1:${port}/health`);
  assert.equal(h.status, 200);
  assert.equal(sh("ps", ["-o", "user=", "-p", String(gw.pid)]).trim(), "rtgw");
  assert.equal((await publish({ ...gw, key }, "c", "t", { ok: 1 })).status, 200);
  await gw.stop();
  // Upgrade over itself keeps the modified conffile.
  sh("dpkg", ["-i", deb], { env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  assert.equal(fs.readFileSync("/etc/rtgw/rtgw.env", "utf8"), conf);
  // Remove keeps the configuration; purge takes it; nothing of the package is left.
  const files = sh("dpkg", ["-L", "rtgw"]).split("\n").filter((f) => f && !fs.statSync(f, { throwIfNoEntry: false })?.isDirectory());
  sh("dpkg", ["-r", "rtgw"]);
  assert.ok(!fs.existsSync("/usr/bin/rtgw"));
  assert.ok(fs.existsSync("/etc/rtgw/rtgw.env"), "remove keeps the conffile");
  sh("dpkg", ["--purge", "rtgw"]);
  for (const f of files) assert.ok(!fs.existsSync(f), `left behind: ${f}`);
  assert.ok(!fs.existsSync("/etc/rtgw"), "/etc/rtgw left behind");
  assert.ok(!fs.existsSync("/lib/systemd/system/rtgw.service"));
  assert.equal(spawnSync("dpkg-query", ["-W", "rtgw"]).status, 1, "dpkg still knows rtgw");
  // The system user stays, as Debian policy advises (postrm says so); cleanup removes it here.
  assert.ok(userExists());
});

await run();
