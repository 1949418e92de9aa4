/* ticker: a thread that calls one function every interval until stopped;
 * the re-read loops of authcfg (ConfigMap, CA files) and tlsreload
 * (serving pair) run on it. */
#ifndef SMI_TICKER_H
#define SMI_TICKER_H

#include <stddef.h>
#include <stdint.h>

typedef struct ticker ticker;

/* Starts calling tick(arg) every interval_ms (first call after one
 * interval).  NULL with a message when the thread cannot start. */
ticker *ticker_start(uint32_t interval_ms, void (*tick)(void *arg), void *arg, char *err,
                     size_t err_size);

/* Wakes and joins the thread (a tick in progress finishes first). */
void ticker_stop(ticker *t);

#endif
