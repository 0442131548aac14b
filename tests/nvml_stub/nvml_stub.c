/* A stand-in for libnvidia-ml.so.1: the NVML entry points nvidia-ml-py calls for llmobs's readings,
 * serving devices and faults described in a text file named by NVML_STUB_CONFIG. The file is read
 * again whenever it changes (a new inode, size or mtime: tests replace it atomically), so a test can
 * change values, or inject and clear faults, while a collector runs.
 *
 * One setting per line:
 *   init <code>                 nvmlInit returns <code> (9: driver not loaded)
 *   count <n>                   number of devices (default: highest index + 1)
 *   <i> name <text...>          <i> uuid <text>
 *   <i> <field> <value>         a number in NVML's unit, or !<code> for an NVML error
 *   <i> proc <pid> <bytes>      a compute process on device <i>
 *   <i> lost_after <n>          from the device's <n>-th call on: NVML_ERROR_GPU_IS_LOST
 *   <i> sleep <field> <seconds> every call reading <field> sleeps first (a hung driver)
 * A field that is not set answers NVML_ERROR_NOT_SUPPORTED. Fields: util util_mem mem_total mem_used
 * temp power energy clock_graphics clock_sm clock_mem clock_video throttle ecc_corrected
 * ecc_uncorrected pcie_tx pcie_rx pcie_tx_bytes pcie_rx_bytes enc dec procs (procs: errors only).
 * Calls may come from several threads at once (llmobs reads each GPU on a thread of its own): the
 * configuration and the devices are read under one lock, never held while a call sleeps.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_DEVICES 16
#define MAX_FIELDS 32
#define MAX_PROCS 16

enum { OK = 0, INVALID_ARGUMENT = 2, NOT_SUPPORTED = 3, INSUFFICIENT_SIZE = 7, GPU_IS_LOST = 15 };

typedef struct {
    char key[32];
    int set, code;
    unsigned long long value;
    double sleep;
} field_t;

typedef struct device {
    char name[96], uuid[96];
    field_t fields[MAX_FIELDS];
    int nfields;
    unsigned pids[MAX_PROCS];
    unsigned long long used[MAX_PROCS];
    int nprocs;
    long lost_after, calls;
} device_t;

typedef device_t *nvmlDevice_t;
typedef struct { unsigned gpu, memory; } nvmlUtilization_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned pid; unsigned long long usedGpuMemory; unsigned gpuInstanceId, computeInstanceId; }
    nvmlProcessInfo_t;
typedef struct {
    unsigned fieldId, scopeId;
    long long timestamp, latencyUsec;
    int valueType, nvmlReturn;
    union { double dVal; unsigned long long ullVal; } value;
} nvmlFieldValue_t;

static device_t devices[MAX_DEVICES];
static int count, init_code;
static struct stat loaded;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static field_t *field(device_t *d, const char *key, int create) {
    for (int i = 0; i < d->nfields; i++)
        if (strcmp(d->fields[i].key, key) == 0) return &d->fields[i];
    if (!create || d->nfields == MAX_FIELDS) return NULL;
    field_t *f = &d->fields[d->nfields++];
    snprintf(f->key, sizeof f->key, "%s", key);
    return f;
}

static void parse_device_line(device_t *d, const char *key, char *rest) {
    rest[strcspn(rest, "\n")] = 0;
    if (strcmp(key, "name") == 0) {
        snprintf(d->name, sizeof d->name, "%s", rest);
    } else if (strcmp(key, "uuid") == 0) {
        snprintf(d->uuid, sizeof d->uuid, "%s", rest);
    } else if (strcmp(key, "lost_after") == 0) {
        d->lost_after = atol(rest);
    } else if (strcmp(key, "proc") == 0) {
        if (d->nprocs < MAX_PROCS && sscanf(rest, "%u %llu", &d->pids[d->nprocs], &d->used[d->nprocs]) == 2)
            d->nprocs++;
    } else if (strcmp(key, "sleep") == 0) {
        char name[32];
        double seconds;
        field_t *f;
        if (sscanf(rest, "%31s %lf", name, &seconds) == 2 && (f = field(d, name, 1))) f->sleep = seconds;
    } else {
        field_t *f = field(d, key, 1);
        if (!f) return;
        if (rest[0] == '!') f->code = atoi(rest + 1);
        else f->set = 1, f->value = strtoull(rest, NULL, 0);
    }
}

static void parse(FILE *in) {
    char line[256], key[32];
    int index, used, highest = -1;
    memset(devices, 0, sizeof devices);
    for (int i = 0; i < MAX_DEVICES; i++) {
        devices[i].lost_after = -1;
        snprintf(devices[i].name, sizeof devices[i].name, "NVIDIA Stub GPU");
        snprintf(devices[i].uuid, sizeof devices[i].uuid, "GPU-00000000-0000-0000-0000-0000000000%02d", i);
    }
    count = -1;
    init_code = OK;
    while (fgets(line, sizeof line, in)) {
        if (sscanf(line, "init %d", &init_code) == 1 || sscanf(line, "count %d", &count) == 1) continue;
        if (sscanf(line, "%d %31s %n", &index, key, &used) == 2 && index >= 0 && index < MAX_DEVICES) {
            parse_device_line(&devices[index], key, line + used);
            if (index > highest) highest = index;
        }
    }
    if (count < 0 || count > MAX_DEVICES) count = highest + 1;
}

/* Read the configuration again if the file changed since it was last read; called under the lock. */
static void refresh(void) {
    const char *path = getenv("NVML_STUB_CONFIG");
    struct stat now;
    if (!path || stat(path, &now) != 0) return;
    if (now.st_ino == loaded.st_ino && now.st_size == loaded.st_size &&
        now.st_mtim.tv_sec == loaded.st_mtim.tv_sec && now.st_mtim.tv_nsec == loaded.st_mtim.tv_nsec)
        return;
    FILE *in = fopen(path, "r");
    if (!in) return;
    parse(in);
    fclose(in);
    loaded = now;
}

static void refresh_locked(void) {
    pthread_mutex_lock(&lock);
    refresh();
    pthread_mutex_unlock(&lock);
}

/* Every call on a device starts here: the device, or an error in *rc. */
static device_t *enter(nvmlDevice_t handle, int *rc) {
    device_t *d = handle;
    pthread_mutex_lock(&lock);
    refresh();
    if (handle < devices || handle >= devices + count) {
        *rc = INVALID_ARGUMENT;
        d = NULL;
    } else if (++handle->calls >= handle->lost_after && handle->lost_after >= 0) {
        *rc = GPU_IS_LOST;
        d = NULL;
    }
    pthread_mutex_unlock(&lock);
    return d;
}

static int value(device_t *d, const char *key, unsigned long long *out) {
    pthread_mutex_lock(&lock);
    field_t *f = field(d, key, 0);
    field_t copy = f ? *f : (field_t){.code = NOT_SUPPORTED};
    pthread_mutex_unlock(&lock);
    if (copy.sleep > 0) {
        struct timespec pause = {(time_t)copy.sleep, (long)((copy.sleep - (time_t)copy.sleep) * 1e9)};
        nanosleep(&pause, NULL);
    }
    if (copy.code) return copy.code;
    if (!copy.set) return NOT_SUPPORTED;
    *out = copy.value;
    return OK;
}

/* Text of a device (name, uuid), copied under the lock. */
static int text(nvmlDevice_t h, size_t offset, char *out, unsigned length) {
    int rc;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    pthread_mutex_lock(&lock);
    snprintf(out, length, "%s", (const char *)d + offset);
    pthread_mutex_unlock(&lock);
    return OK;
}

/* One number, as most getters return: the device's <key> into *out of the getter's type. */
#define GETTER(name, type, key)                                  \
    int name(nvmlDevice_t h, type *out) {                        \
        int rc;                                                  \
        unsigned long long v;                                    \
        device_t *d = enter(h, &rc);                             \
        if (!d) return rc;                                       \
        if ((rc = value(d, key, &v))) return rc;                 \
        *out = (type)v;                                          \
        return OK;                                               \
    }

GETTER(nvmlDeviceGetPowerUsage, unsigned, "power")
GETTER(nvmlDeviceGetTotalEnergyConsumption, unsigned long long, "energy")
GETTER(nvmlDeviceGetCurrentClocksEventReasons, unsigned long long, "throttle")
GETTER(nvmlDeviceGetCurrentClocksThrottleReasons, unsigned long long, "throttle")

int nvmlInitWithFlags(unsigned flags) {
    (void)flags;
    refresh_locked();
    return init_code;
}
int nvmlShutdown(void) { return OK; }

const char *nvmlErrorString(int code) {
    switch (code) {
        case OK: return "Success";
        case INVALID_ARGUMENT: return "Invalid Argument";
        case NOT_SUPPORTED: return "Not Supported";
        case GPU_IS_LOST: return "GPU is lost";
        default: return "Unknown Error";
    }
}

int nvmlDeviceGetCount_v2(unsigned *n) {
    pthread_mutex_lock(&lock);
    refresh();
    *n = (unsigned)count;
    pthread_mutex_unlock(&lock);
    return OK;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned index, nvmlDevice_t *handle) {
    int rc;
    if (index >= MAX_DEVICES) return INVALID_ARGUMENT;
    if (!enter(&devices[index], &rc)) return rc;
    *handle = &devices[index];
    return OK;
}

int nvmlDeviceGetName(nvmlDevice_t h, char *name, unsigned length) {
    return text(h, offsetof(device_t, name), name, length);
}

int nvmlDeviceGetUUID(nvmlDevice_t h, char *uuid, unsigned length) {
    return text(h, offsetof(device_t, uuid), uuid, length);
}

int nvmlDeviceGetUtilizationRates(nvmlDevice_t h, nvmlUtilization_t *rates) {
    int rc;
    unsigned long long gpu, memory = 0;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    if ((rc = value(d, "util", &gpu))) return rc;
    value(d, "util_mem", &memory);
    rates->gpu = (unsigned)gpu;
    rates->memory = (unsigned)memory;
    return OK;
}

int nvmlDeviceGetMemoryInfo(nvmlDevice_t h, nvmlMemory_t *m) {
    int rc;
    unsigned long long used = 0;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    if ((rc = value(d, "mem_total", &m->total))) return rc;
    value(d, "mem_used", &used);
    m->used = used;
    m->free = m->total - used;
    return OK;
}

int nvmlDeviceGetTemperature(nvmlDevice_t h, int sensor, unsigned *celsius) {
    (void)sensor;
    int rc;
    unsigned long long v;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    if ((rc = value(d, "temp", &v))) return rc;
    *celsius = (unsigned)v;
    return OK;
}

/* Getters that take one selector (clock type, ECC type, PCIe direction): it picks the field. */
static int selected(nvmlDevice_t h, const char *const *keys, int nkeys, int which, unsigned long long *out) {
    int rc;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    if (which < 0 || which >= nkeys) return INVALID_ARGUMENT;
    return value(d, keys[which], out);
}

int nvmlDeviceGetClockInfo(nvmlDevice_t h, int type, unsigned *mhz) {
    static const char *const keys[] = {"clock_graphics", "clock_sm", "clock_mem", "clock_video"};
    unsigned long long v;
    int rc = selected(h, keys, 4, type, &v);
    if (!rc) *mhz = (unsigned)v;
    return rc;
}

int nvmlDeviceGetTotalEccErrors(nvmlDevice_t h, int error_type, int counter_type, unsigned long long *n) {
    static const char *const keys[] = {"ecc_corrected", "ecc_uncorrected"};
    (void)counter_type;
    return selected(h, keys, 2, error_type, n);
}

int nvmlDeviceGetPcieThroughput(nvmlDevice_t h, int counter, unsigned *kilobytes_per_second) {
    static const char *const keys[] = {"pcie_tx", "pcie_rx"};
    unsigned long long v;
    int rc = selected(h, keys, 2, counter, &v);
    if (!rc) *kilobytes_per_second = (unsigned)v;
    return rc;
}

static int video(nvmlDevice_t h, const char *key, unsigned *utilization, unsigned *period_us) {
    int rc;
    unsigned long long v;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    if ((rc = value(d, key, &v))) return rc;
    *utilization = (unsigned)v;
    *period_us = 167000;
    return OK;
}

int nvmlDeviceGetEncoderUtilization(nvmlDevice_t h, unsigned *u, unsigned *p) { return video(h, "enc", u, p); }
int nvmlDeviceGetDecoderUtilization(nvmlDevice_t h, unsigned *u, unsigned *p) { return video(h, "dec", u, p); }

int nvmlDeviceGetFieldValues(nvmlDevice_t h, int n, nvmlFieldValue_t *values) {
    int rc;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    for (int i = 0; i < n; i++) {
        const char *key = values[i].fieldId == 197 ? "pcie_tx_bytes" : values[i].fieldId == 198 ? "pcie_rx_bytes" : "";
        values[i].valueType = 3; /* unsigned long long */
        values[i].nvmlReturn = value(d, key, &values[i].value.ullVal);
    }
    return OK;
}

int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t h, unsigned *n, nvmlProcessInfo_t *infos) {
    int rc;
    device_t *d = enter(h, &rc);
    if (!d) return rc;
    pthread_mutex_lock(&lock);
    field_t *f = field(d, "procs", 0);
    if (f && f->code) {
        rc = f->code;
    } else {
        rc = *n < (unsigned)d->nprocs ? INSUFFICIENT_SIZE : OK;
        for (int i = 0; rc == OK && i < d->nprocs; i++)
            infos[i] = (nvmlProcessInfo_t){d->pids[i], d->used[i], 0xFFFFFFFF, 0xFFFFFFFF};
        *n = (unsigned)d->nprocs;
    }
    pthread_mutex_unlock(&lock);
    return rc;
}
