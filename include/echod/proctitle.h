/* proctitle: the name ps, top, ss -p and netstat -p show for a process. */
#ifndef ECHOD_PROCTITLE_H
#define ECHOD_PROCTITLE_H

#ifdef __cplusplus
extern "C" {
#endif

/* Call once from main, before anything reads environ through pointers it kept. */
void proctitle_init(int argc, char **argv);
/* Sets /proc/PID/comm (15 bytes) and, where room allows, the command line. */
void proctitle_set(const char *title);

#ifdef __cplusplus
}
#endif
#endif
