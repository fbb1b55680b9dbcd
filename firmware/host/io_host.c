/* io_host.c - mk_platform.h on a host (stdio), for the bit-exactness tests of whole models. */
#include <stdio.h>
#include <stdlib.h>
#include "mk_platform.h"

static FILE *files[8];

void mk_timer_start(void) {}

int mk_io_open(const char *name, int write)
{
    for (int i = 0; i < 8; i++) {
        if (!files[i]) {
            files[i] = fopen(name, write ? "wb" : "rb");
            return files[i] ? i : -1;
        }
    }
    return -1;
}

int mk_io_read(int h, void *buf, uint32_t len) { return fread(buf, 1, len, files[h]) != len; }
int mk_io_write(int h, const void *buf, uint32_t len) { return fwrite(buf, 1, len, files[h]) != len; }
void mk_io_close(int h)
{
    fclose(files[h]);
    files[h] = NULL;
}
void mk_io_print(const char *text) { fputs(text, stderr); }
void mk_exit(int code) { exit(code); }
uint32_t mk_stack_unused(void) { return 0; }
uint32_t mk_stack_size(void) { return 0; }
