/* libFuzzer target: the manifest loader, vigil_manifest_load(), on one
 * manifest file in a repository made once per process (with a source file,
 * a directory and a symbolic link pointing outside it, so that paths resolve
 * both ways), then the accessors and the desired and policies bodies of what
 * loaded. The host is never observed: a fuzzed Service would run systemctl
 * and a fuzzed File would read any path. */
#define _POSIX_C_SOURCE 200809L

#include <vigil/vigil.h>

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FUZZ_MAX_LEN 16384

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char repo[256], manifest[300];

static void setup(void)
{
    char tmpl[] = "/tmp/vigil-fuzz-manifest.XXXXXX";
    char *tmp = mkdtemp(tmpl);
    if (!tmp)
        abort();
    char p[400];
    snprintf(repo, sizeof(repo), "%s/repo", tmp);
    mkdir(repo, 0755);
    snprintf(p, sizeof(p), "%s/files", repo);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/files/motd", repo);
    FILE *f = fopen(p, "w");
    if (!f)
        abort();
    fputs("welcome\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/files/outside", repo);
    if (symlink("/etc/hostname", p) != 0)
        abort();
    snprintf(manifest, sizeof(manifest), "%s/m.yaml", repo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!repo[0])
        setup();
    int fd = open(manifest, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        abort();
    if (size && write(fd, data, size) != (ssize_t)size)
        abort();
    close(fd);

    vigil_manifest_options o = VIGIL_MANIFEST_OPTIONS_INIT;
    o.root = repo;
    o.max_nodes = 20000;
    o.max_source_size = 65536;
    o.proc_root = "/nonexistent";
    vigil_manifest *m = NULL;
    if (vigil_manifest_load(&m, &o) == VIGIL_OK) {
        char target[600];
        for (size_t i = 0; i < vigil_manifest_count(m); i++) {
            const vigil_resource *r = vigil_manifest_at(m, i);
            (void)vigil_resource_target(r, "fuzz-host", target, sizeof(target));
            (void)vigil_resource_spec_json(r);
            for (size_t j = 0; j < vigil_resource_label_count(r); j++)
                (void)vigil_resource_label(r, vigil_resource_label_key_at(r, j));
        }
        vigil_buf b = VIGIL_BUF_INIT;
        (void)vigil_manifest_desired_body(m, "fuzz-host", "0123456789abcdef", &b);
        (void)vigil_manifest_policies_body(m, "fuzz-host", "0123456789abcdef", &b);
        vigil_buf_dispose(&b);
    }
    vigil_manifest_free(m);
    return 0;
}
