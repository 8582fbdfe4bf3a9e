/*
 * manifests - cost of a full GitOps sync of 10,000 resources.
 *
 * Generates, in a temporary directory, a repository of 100 manifest files of
 * 100 documents each: 9,990 File resources (each with its own source file of
 * about 200 bytes in the repository, mode and selfHeal) and 10 Service
 * resources (9 supervised by a pidfile naming this very process, whose
 * program is this benchmark, and one, stopped, counting its replicas by
 * scanning /proc), and the host side: every managed file written with its desired
 * bytes and mode, so that the host is in sync.
 *
 * Then, 5 times: vigil_manifest_load() (walk, YAML, validation, the sha256
 * of every source), vigil_manifest_observe() (observe + diff of every
 * resource: open, fstat and sha256 of every managed file, the pidfiles and
 * /proc), and the two bodies gitopsd publishes (PUT /v1/desired and POST
 * /v1/drift); prints each phase and the total, which is one full sync.
 * Once: writing the 9,990 blobs (the first sync's extra), and an observe
 * after 100 managed files were changed by hand (drift detected).
 *
 * Target (issue 15): a full sync of 10,000 resources under 1 s. Never fails
 * on time; fails (exit 1) if the results are wrong (a resource not in sync,
 * the drift not found).
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <vigil/vigil.h>

#define FILES_PER_MANIFEST 100
#define MANIFESTS          100
#define SERVICES           10
#define RESOURCES          (FILES_PER_MANIFEST * MANIFESTS)
#define RUNS               5

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "manifests: %s: %s\n", what, vigil_error_last()->message);
    exit(1);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    size_t n = strlen(text);
    if (fd < 0 || write(fd, text, n) != (ssize_t)n || fchmod(fd, mode) != 0) {
        perror(path);
        exit(1);
    }
    close(fd);
}

static void content_of(char *buf, size_t size, int i)
{
    snprintf(buf, size,
             "# managed by vigil-gitopsd: file %05d\n"
             "listen 127.0.0.1:%d\nworkers %d\nlog /var/log/app-%05d.log\n"
             "# the rest pads the file to a realistic size for a small config\n",
             i, 10000 + i % 50000, 1 + i % 16, i);
}

static void rm_rf(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char p[1024];
            snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
            rm_rf(p);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

int main(void)
{
    char tmpl[] = "/tmp/vigil-bench-manifests.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp) {
        perror("mkdtemp");
        return 1;
    }
    char repo[256], host[256], blobs[256], self[512], path[1024];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    snprintf(host, sizeof(host), "%s/host", tmp);
    snprintf(blobs, sizeof(blobs), "%s/blobs", tmp);
    mkdir(repo, 0755);
    mkdir(host, 0755);
    snprintf(path, sizeof(path), "%s/files", repo);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/hosts", repo);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/hosts/web", repo);
    mkdir(path, 0755);
    ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (sl <= 0)
        return 1;
    self[sl] = '\0';
    char pidfile[512], pidtext[32];
    snprintf(pidfile, sizeof(pidfile), "%s/bench.pid", host);
    snprintf(pidtext, sizeof(pidtext), "%d\n", (int)getpid());
    write_text(pidfile, pidtext, 0644);

    /* the repository and the host, in sync */
    double t0 = now_ms();
    char *doc = malloc(1 << 20);
    char content[512];
    int n = 0;
    for (int f = 0; f < MANIFESTS; f++) {
        size_t off = 0;
        for (int k = 0; k < FILES_PER_MANIFEST; k++, n++) {
            if (n >= RESOURCES - SERVICES) {
                if (n == RESOURCES - 1) { /* counts its replicas: a scan of /proc */
                    off += (size_t)snprintf(doc + off, (1 << 20) - off,
                                            "---\napiVersion: vigil/v1\nkind: Service\nmetadata: "
                                            "{name: svc-%05d}\nspec: {process: {start: "
                                            "[/usr/sbin/not-running, --flag]}, state: stopped, "
                                            "replicas: 0}\n",
                                            n);
                } else {
                    off += (size_t)snprintf(
                        doc + off, (1 << 20) - off,
                        "---\napiVersion: vigil/v1\nkind: Service\nmetadata: {name: svc-%05d, "
                        "labels: {tier: web}}\nspec: {process: {start: [\"%s\"], pidfile: "
                        "\"%s\"}, action: restart_svc, selfHeal: true}\n",
                        n, self, pidfile);
                }
                continue;
            }
            content_of(content, sizeof(content), n);
            snprintf(path, sizeof(path), "%s/files/f%05d.conf", repo, n);
            write_text(path, content, 0644);
            snprintf(path, sizeof(path), "%s/f%05d.conf", host, n);
            write_text(path, content, 0640);
            off += (size_t)snprintf(doc + off, (1 << 20) - off,
                                    "---\napiVersion: vigil/v1\nkind: File\nmetadata: {name: "
                                    "file-%05d, labels: {tier: web, app: a%d}}\nspec: {path: "
                                    "\"%s\", source: files/f%05d.conf, mode: \"0640\", selfHeal: "
                                    "true}\n",
                                    n, n % 10, path, n);
        }
        snprintf(path, sizeof(path), "%s/hosts/web/m%03d.yaml", repo, f);
        write_text(path, doc, 0644);
    }
    free(doc);
    printf("generated %d resources (%d File, %d Service) in %d manifests in %.0f ms\n", RESOURCES,
           RESOURCES - SERVICES, SERVICES, MANIFESTS, now_ms() - t0);

    const char *sources[] = {"hosts/web", NULL};
    vigil_manifest_options o = VIGIL_MANIFEST_OPTIONS_INIT;
    o.root = repo;
    o.sources = sources;
    const char *rev = "0123456789abcdef0123456789abcdef01234567";
    double best = 1e18;
    printf("%-4s %10s %16s %10s %10s\n", "run", "load ms", "observe+diff ms", "bodies ms",
           "total ms");
    for (int run = 1; run <= RUNS; run++) {
        vigil_manifest *m = NULL;
        vigil_drift *d = NULL;
        vigil_buf b1 = VIGIL_BUF_INIT, b2 = VIGIL_BUF_INIT;
        double a = now_ms();
        if (vigil_manifest_load(&m, &o) != VIGIL_OK)
            die("load");
        double b = now_ms();
        if (vigil_manifest_observe(&d, m, "web-01") != VIGIL_OK)
            die("observe");
        double c = now_ms();
        if (vigil_manifest_desired_body(m, "web-01", rev, &b1) != VIGIL_OK ||
            vigil_drift_body(d, rev, &b2) != VIGIL_OK)
            die("bodies");
        double e = now_ms();
        if (vigil_manifest_count(m) != RESOURCES || vigil_drift_count(d) != RESOURCES ||
            vigil_drift_drifted(d) != 0 || vigil_drift_errors(d) != 0) {
            vigil_drift_item it = VIGIL_DRIFT_ITEM_INIT;
            for (size_t i = 0; i < vigil_drift_count(d); i++)
                if (vigil_drift_item_at(d, i, &it) == VIGIL_OK &&
                    it.status != VIGIL_RESOURCE_IN_SYNC) {
                    fprintf(stderr, "not in sync: %s\n", it.item_json);
                    break;
                }
            return 1;
        }
        printf("%-4d %10.1f %16.1f %10.1f %10.1f   (bodies %zu + %zu bytes)\n", run, b - a, c - b,
               e - c, e - a, b1.size, b2.size);
        if (e - a < best)
            best = e - a;
        vigil_buf_dispose(&b1);
        vigil_buf_dispose(&b2);
        vigil_drift_free(d);
        if (run < RUNS)
            vigil_manifest_free(m);
        else {
            size_t written = 0;
            double w0 = now_ms();
            if (vigil_manifest_write_blobs(m, blobs, &written) != VIGIL_OK)
                die("blobs");
            printf("blobs: %zu written in %.1f ms (first sync only)\n", written, now_ms() - w0);
            for (int i = 0; i < 100; i++) {
                snprintf(path, sizeof(path), "%s/f%05d.conf", host, i * 97);
                write_text(path, "edited by hand\n", 0640);
            }
            double x = now_ms();
            if (vigil_manifest_observe(&d, m, "web-01") != VIGIL_OK)
                die("observe");
            double y = now_ms();
            printf("observe+diff after 100 hand edits: %.1f ms, %zu drifted\n", y - x,
                   vigil_drift_drifted(d));
            if (vigil_drift_drifted(d) != 100)
                return 1;
            vigil_drift_free(d);
            vigil_manifest_free(m);
        }
    }
    printf("full sync of %d resources: best %.1f ms (target: under 1000 ms)\n", RESOURCES, best);
    rm_rf(tmp);
    return 0;
}
