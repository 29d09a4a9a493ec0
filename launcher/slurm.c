/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slurm: run sbatch/scontrol/scancel without a shell and read their answers.
 * See slurm.h.
 */
#include "slurm.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int slurm_run(const char *const *argv, const char *input, char *out, size_t outlen, char *err,
              size_t errlen)
{
	int in[2] = {-1, -1}, po[2] = {-1, -1}, pe[2] = {-1, -1};
	size_t in_off = 0, in_len = input ? strlen(input) : 0, no = 0, ne = 0;
	int status = 0, rc = -1;
	pid_t pid;

	if (out && outlen)
		out[0] = 0;
	if (err && errlen)
		err[0] = 0;
	if (pipe2(in, O_CLOEXEC) || pipe2(po, O_CLOEXEC) || pipe2(pe, O_CLOEXEC))
		goto out;
	pid = fork();
	if (pid < 0)
		goto out;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		signal(SIGPIPE, SIG_DFL);
		execvp(argv[0], (char *const *)argv);
		dprintf(2, "cannot run %s: %s", argv[0], strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(po[1]);
	close(pe[1]);
	in[0] = po[1] = pe[1] = -1;
	if (!in_len) {
		close(in[1]);
		in[1] = -1;
	} else {
		fcntl(in[1], F_SETFL, O_NONBLOCK);
	}
	while (po[0] >= 0 || pe[0] >= 0) {
		struct pollfd fds[3];
		int nf = 0;
		if (po[0] >= 0)
			fds[nf++] = (struct pollfd){.fd = po[0], .events = POLLIN};
		if (pe[0] >= 0)
			fds[nf++] = (struct pollfd){.fd = pe[0], .events = POLLIN};
		if (in[1] >= 0)
			fds[nf++] = (struct pollfd){.fd = in[1], .events = POLLOUT};
		if (poll(fds, (nfds_t)nf, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < nf; i++) {
			char buf[4096];
			ssize_t r;
			if (!fds[i].revents)
				continue;
			if (fds[i].fd == in[1]) {
				r = write(in[1], input + in_off, in_len - in_off);
				if (r > 0)
					in_off += (size_t)r;
				if ((r < 0 && errno != EAGAIN && errno != EINTR) ||
				    in_off == in_len) {
					close(in[1]);
					in[1] = -1;
				}
				continue;
			}
			r = read(fds[i].fd, buf, sizeof(buf));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0) {
				close(fds[i].fd);
				if (fds[i].fd == po[0])
					po[0] = -1;
				else
					pe[0] = -1;
				continue;
			}
			if (fds[i].fd == po[0] && out && outlen) {
				size_t k =
				    (size_t)r < outlen - 1 - no ? (size_t)r : outlen - 1 - no;
				memcpy(out + no, buf, k);
				no += k;
				out[no] = 0;
			} else if (fds[i].fd == pe[0] && err && errlen) {
				size_t k =
				    (size_t)r < errlen - 1 - ne ? (size_t)r : errlen - 1 - ne;
				memcpy(err + ne, buf, k);
				ne += k;
				err[ne] = 0;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR)
			goto out;
	}
	if (WIFEXITED(status))
		rc = WEXITSTATUS(status);
	else if (WIFSIGNALED(status))
		rc = 128 + WTERMSIG(status);
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (po[i] >= 0)
			close(po[i]);
		if (pe[i] >= 0)
			close(pe[i]);
	}
	return rc;
}

static void chomp(char *s)
{
	size_t n = strlen(s);

	while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
		s[--n] = 0;
}

int slurm_sbatch(const char *const *args, const char *script, char *job_id, size_t id_len,
                 char *errbuf, size_t errlen)
{
	const char *argv[128];
	char out[256], err[2048];
	size_t n = 0;
	int rc;

	argv[n++] = "sbatch";
	argv[n++] = "--parsable";
	for (size_t i = 0; args[i] && n < 126; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	rc = slurm_run(argv, script, out, sizeof(out), err, sizeof(err));
	chomp(out);
	chomp(err);
	if (rc != 0) {
		snprintf(errbuf, errlen, "sbatch failed (%s%d): %s",
		         rc < 0 ? "could not start, " : "exit ", rc, err[0] ? err : "no message");
		return -1;
	}
	char *semi = strchr(out, ';');
	if (semi)
		*semi = 0;
	if (!out[0] || strspn(out, "0123456789_") != strlen(out)) {
		snprintf(errbuf, errlen, "sbatch printed no job id (\"%s\"; stderr: %s)", out, err);
		return -1;
	}
	snprintf(job_id, id_len, "%s", out);
	return 0;
}

/* The value of "Key=" in a `scontrol -o` line, up to the next space. */
static bool field(const char *line, const char *key, char *out, size_t len)
{
	size_t kl = strlen(key);
	const char *p;

	for (p = strstr(line, key); p; p = strstr(p, key)) {
		if ((p == line || p[-1] == ' ') && p[kl] == '=') {
			const char *v = p + kl + 1;
			size_t n = strcspn(v, " \n");
			snprintf(out, len, "%.*s", (int)n, v);
			return true;
		}
		p += kl;
	}
	return false;
}

static time_t parse_slurm_time(const char *s)
{
	struct tm tm = {0};

	if (!s[0] || !strcmp(s, "Unknown") || !strcmp(s, "None"))
		return 0;
	if (!strptime(s, "%Y-%m-%dT%H:%M:%S", &tm))
		return 0;
	tm.tm_isdst = -1;
	return mktime(&tm); /* scontrol prints local time */
}

int slurm_parse_show_job(const char *line, struct slurm_job *out)
{
	char v[128];

	memset(out, 0, sizeof(*out));
	if (!field(line, "JobId", out->job_id, sizeof(out->job_id)))
		return -1;
	field(line, "JobName", out->name, sizeof(out->name));
	field(line, "JobState", out->state, sizeof(out->state));
	field(line, "Reason", out->reason, sizeof(out->reason));
	if (field(line, "NodeList", out->node, sizeof(out->node)) && !strcmp(out->node, "(null)"))
		out->node[0] = 0;
	if (field(line, "ExitCode", v, sizeof(v)))
		sscanf(v, "%d:%d", &out->exit_code, &out->exit_signal);
	if (field(line, "StartTime", v, sizeof(v)))
		out->start = parse_slurm_time(v);
	if (field(line, "EndTime", v, sizeof(v)))
		out->end = parse_slurm_time(v);
	return 0;
}

int slurm_show_job(const char *job_id, struct slurm_job *out, char *errbuf, size_t errlen)
{
	const char *argv[] = {"scontrol", "-o", "show", "job", job_id, NULL};
	char o[8192], e[1024];
	int rc = slurm_run(argv, NULL, o, sizeof(o), e, sizeof(e));

	chomp(e);
	if (rc != 0) {
		if (strstr(e, "Invalid job id"))
			return 1;
		snprintf(errbuf, errlen, "scontrol show job %s failed (%d): %s", job_id, rc, e);
		return -1;
	}
	if (slurm_parse_show_job(o, out) != 0) {
		snprintf(errbuf, errlen, "scontrol show job %s: no JobId in its answer", job_id);
		return -1;
	}
	return 0;
}

int slurm_node_cpus(const char *node, int *alloc, char *errbuf, size_t errlen)
{
	const char *argv[] = {"scontrol", "-o", "show", "node", node, NULL};
	char o[8192], e[1024];
	const char *p;
	int rc = slurm_run(argv, NULL, o, sizeof(o), e, sizeof(e));

	chomp(e);
	if (rc != 0) {
		snprintf(errbuf, errlen, "scontrol show node %s failed (%d): %s", node, rc, e);
		return -1;
	}
	p = strstr(o, "CPUAlloc=");
	if (!p) {
		snprintf(errbuf, errlen, "scontrol show node %s: no CPUAlloc in its answer", node);
		return -1;
	}
	*alloc = atoi(p + 9);
	return 0;
}

int slurm_cancel(const char *const *job_ids, size_t n, char *errbuf, size_t errlen)
{
	const char *argv[260];
	char e[2048];
	size_t k = 0;
	int rc;

	if (n == 0)
		return 0;
	if (n > 256) {
		snprintf(errbuf, errlen, "too many jobs to cancel at once (%zu)", n);
		return -1;
	}
	argv[k++] = "scancel";
	for (size_t i = 0; i < n; i++)
		argv[k++] = job_ids[i];
	argv[k] = NULL;
	rc = slurm_run(argv, NULL, NULL, 0, e, sizeof(e));
	chomp(e);
	/* scancel says "Job/step already completing or completed" and exits 0 or 1: fine. */
	if (rc != 0 && !strstr(e, "already") && !strstr(e, "Invalid job id")) {
		snprintf(errbuf, errlen, "scancel failed (%d): %s", rc, e);
		return -1;
	}
	return 0;
}

bool slurm_state_is_final(const char *s)
{
	static const char *const live[] = {
	    "PENDING",   "RUNNING",      "SUSPENDED",     "COMPLETING", "CONFIGURING",
	    "REQUEUED",  "REQUEUE_HOLD", "REQUEUE_FED",   "RESIZING",   "SIGNALING",
	    "STAGE_OUT", "STOPPED",      "RESV_DEL_HOLD", NULL};

	if (!s || !s[0])
		return false;
	for (size_t i = 0; live[i]; i++)
		if (!strcmp(s, live[i]))
			return false;
	return true;
}
