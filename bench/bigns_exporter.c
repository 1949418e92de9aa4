/* bigns_exporter: serves, for a Prometheus to scrape with honor_labels: true,
 * Linkerd-shaped inbound series for one big namespace: N pods (default
 * 10,000) of one Deployment, each with
 *   response_total{classification="success"|"failure", ...}   2 series
 *   response_latency_ms_bucket{le=<26 Linkerd bounds>, ...}   26 series
 * so 28 series a pod, 280,000 for 10,000 pods.  Counters grow
 * deterministically with the time since start; bucket counts are a fixed
 * cumulative distribution of the total, so they never decrease.
 *
 * Benchmark helper only (bench/run.sh builds it with gcc): one thread,
 * blocking sockets, every answer closes its connection, and the process
 * exits by itself after --max-seconds.
 *
 *   bigns_exporter --listen 127.0.0.1:PORT [--pods N] [--namespace NS]
 *                  [--max-seconds S]
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define N_BOUNDS 26
static const char *const bounds[N_BOUNDS] = {
    "1",    "2",    "3",     "4",     "5",     "10",    "20",    "30",   "40",
    "50",   "100",  "200",   "300",   "400",   "500",   "1000",  "2000", "3000",
    "4000", "5000", "10000", "20000", "30000", "40000", "50000", "+Inf",
};
/* Share of requests at or below each bound, in millionths (cumulative). */
static const uint32_t cdf_ppm[N_BOUNDS] = {
    20000,  60000,  120000, 200000, 300000, 520000, 700000, 800000,  860000,
    900000, 950000, 975000, 985000, 990000, 993000, 996000, 998000,  999000,
    999400, 999600, 999800, 999900, 999950, 999980, 999990, 1000000,
};
#define POD_TEMPLATE_HASH "5f9c7d8b4"

typedef struct buf {
	char *data;
	size_t len, cap;
} buf;

static int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int buf_printf(buf *b, const char *fmt, ...)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -1;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return 0;
		}
		size_t cap = b->cap * 2 + (size_t)n + 1;
		char *d = realloc(b->data, cap);
		if (!d)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	return -1;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The whole exposition at `elapsed` seconds after start. */
static int render(buf *b, const char *ns, long pods, double elapsed)
{
	b->len = 0;
	if (buf_printf(b, "# HELP response_total Total count of HTTP responses.\n"
	                  "# TYPE response_total counter\n") < 0)
		return -1;
	for (long i = 0; i < pods; i++) {
		/* 1 to 4 requests a second, 1 in 20 failing */
		double rate = 1.0 + (double)(i % 7) * 0.5;
		uint64_t total = (uint64_t)(rate * (elapsed + 60.0));
		uint64_t failure = total / 20;
		const char *cls[2] = {"success", "failure"};
		uint64_t val[2] = {total - failure, failure};
		for (int c = 0; c < 2; c++)
			if (buf_printf(
			        b,
			        "response_total{namespace=\"%s\",pod=\"%s-" POD_TEMPLATE_HASH
			        "-%ld\",deployment=\"%s\",pod_template_hash=\"" POD_TEMPLATE_HASH
			        "\",control_plane_ns=\"linkerd\",direction=\"inbound\",tls="
			        "\"true\","
			        "status_code=\"%s\",classification=\"%s\"} %llu\n",
			        ns, ns, i, ns, c == 0 ? "200" : "500", cls[c],
			        (unsigned long long)val[c]) < 0)
				return -1;
	}
	if (buf_printf(b, "# HELP response_latency_ms Elapsed times between a request's headers "
	                  "being received and its response stream completing\n"
	                  "# TYPE response_latency_ms histogram\n") < 0)
		return -1;
	for (long i = 0; i < pods; i++) {
		double rate = 1.0 + (double)(i % 7) * 0.5;
		uint64_t total = (uint64_t)(rate * (elapsed + 60.0));
		for (int k = 0; k < N_BOUNDS; k++)
			if (buf_printf(
			        b,
			        "response_latency_ms_bucket{namespace=\"%s\",pod=\"%"
			        "s-" POD_TEMPLATE_HASH
			        "-%ld\",deployment=\"%s\",pod_template_hash=\"" POD_TEMPLATE_HASH
			        "\",control_plane_ns=\"linkerd\",direction=\"inbound\",tls="
			        "\"true\","
			        "le=\"%s\"} %llu\n",
			        ns, ns, i, ns, bounds[k],
			        (unsigned long long)(total * cdf_ppm[k] / 1000000u)) < 0)
				return -1;
	}
	return 0;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void serve(int fd, buf *body, const char *ns, long pods, double start)
{
	char req[4096];
	size_t got = 0;
	/* Read the request head, at most 2 s and 4 KiB. */
	struct pollfd pfd = {.fd = fd, .events = POLLIN};
	while (got < sizeof req - 1 && poll(&pfd, 1, 2000) > 0) {
		ssize_t r = read(fd, req + got, sizeof req - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[got] = '\0';
	if (strncmp(req, "GET /metrics ", 13) == 0) {
		char head[256];
		if (render(body, ns, pods, now_seconds() - start) < 0) {
			const char *e =
			    "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
			    "Connection: close\r\n\r\n";
			(void)write_all(fd, e, strlen(e));
			return;
		}
		int n = snprintf(head, sizeof head,
		                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
		                 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
		                 body->len);
		if (write_all(fd, head, (size_t)n) == 0)
			(void)write_all(fd, body->data, body->len);
	} else {
		const char *e =
		    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
		(void)write_all(fd, e, strlen(e));
	}
}

int main(int argc, char **argv)
{
	const char *listen_at = NULL, *ns = "bench";
	long pods = 10000, max_seconds = 900;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--listen") == 0)
			listen_at = argv[i + 1];
		else if (strcmp(argv[i], "--pods") == 0)
			pods = strtol(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--namespace") == 0)
			ns = argv[i + 1];
		else if (strcmp(argv[i], "--max-seconds") == 0)
			max_seconds = strtol(argv[i + 1], NULL, 10);
		else {
			fprintf(stderr, "bigns_exporter: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (!listen_at || pods < 1 || pods > 1000000 || max_seconds < 1) {
		fprintf(stderr, "usage: bigns_exporter --listen 127.0.0.1:PORT [--pods N] "
		                "[--namespace NS] [--max-seconds S]\n");
		return 2;
	}
	char host[64];
	const char *colon = strrchr(listen_at, ':');
	if (!colon || (size_t)(colon - listen_at) >= sizeof host) {
		fprintf(stderr, "bigns_exporter: --listen wants HOST:PORT\n");
		return 2;
	}
	memcpy(host, listen_at, (size_t)(colon - listen_at));
	host[colon - listen_at] = '\0';
	struct sockaddr_in addr = {.sin_family = AF_INET,
	                           .sin_port = htons((uint16_t)atoi(colon + 1))};
	if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
		fprintf(stderr, "bigns_exporter: bad address %s\n", host);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	int ls = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (ls < 0 || bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 16) < 0) {
		perror("bigns_exporter: listen");
		return 1;
	}
	buf body = {.data = malloc(1 << 20), .cap = 1 << 20};
	if (!body.data)
		return 1;
	double start = now_seconds();
	fprintf(stderr, "bigns_exporter: %ld pods in namespace %s on %s for at most %ld s\n", pods,
	        ns, listen_at, max_seconds);
	while (now_seconds() - start < (double)max_seconds) {
		struct pollfd pfd = {.fd = ls, .events = POLLIN};
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		int fd = accept(ls, NULL, NULL);
		if (fd < 0)
			continue;
		serve(fd, &body, ns, pods, start);
		close(fd);
	}
	close(ls);
	free(body.data);
	return 0;
}
