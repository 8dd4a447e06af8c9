/*
 * main.c: entry point of the `strata` binary (placeholder until the CLI lands).
 */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "strata: not built yet\n");
    return 2;
}
