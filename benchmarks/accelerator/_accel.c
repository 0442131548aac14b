/* A prototype C accelerator for llmobs's metrics-only call, to measure what one would buy (issue 15).
 *
 * Histogram: llmobs's HistogramSeries.record (bisect_left over the bounds, bucket add, sum with the
 * same 2**63 bound, min, max). It takes no lock: the GIL is held for the whole record and no Python
 * code runs inside it, so it is atomic for other threads and for signal handlers (a free-threaded
 * build would need a mutex here).
 *
 * Monitored: the whole metrics-only wrapper of llmobs._inference._wrap_function in one vectorcall:
 * the site checks (generation, tracer, profiling plan), the placeholder entry [start] set in llmobs's
 * context variable around the call, the in-flight +1/-1, two reads of the perf_counter clock, the
 * call and the duration record. Whatever is not the plain fast path goes to Python callables: the
 * pure-Python wrapper itself (spans, a new generation, profiling), end(entry, result) for a result
 * that may carry usage or a call that asked for its handle, fail(entry, exc) for an exception.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stddef.h>
#include <time.h>

#define MAX_SUM 9223372036854775808.0 /* 2**63 */

static double
perf_counter(void)
{
    struct timespec ts; /* time.perf_counter on Linux */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    PyObject_HEAD
    Py_ssize_t n;
    double *bounds;
    long long *counts; /* n + 1 buckets */
    double sum, min, max;
    long long dropped;
} Histogram;

static void
histogram_add(Histogram *h, double value)
{
    Py_ssize_t lo = 0, hi = h->n;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (h->bounds[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    double total = h->sum + value;
    if (!(-MAX_SUM < total && total < MAX_SUM)) { /* also NaN */
        h->dropped++;
        return;
    }
    h->counts[lo]++;
    h->sum = total;
    if (value < h->min)
        h->min = value;
    if (value > h->max)
        h->max = value;
}

static int
histogram_init(Histogram *self, PyObject *args, PyObject *kwds)
{
    PyObject *bounds;
    if (!PyArg_ParseTuple(args, "O", &bounds))
        return -1;
    PyObject *seq = PySequence_Fast(bounds, "bounds must be a sequence");
    if (seq == NULL)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    self->bounds = PyMem_Calloc(n ? n : 1, sizeof(double));
    self->counts = PyMem_Calloc(n + 1, sizeof(long long));
    if (self->bounds == NULL || self->counts == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        self->bounds[i] = PyFloat_AsDouble(PySequence_Fast_GET_ITEM(seq, i));
        if (self->bounds[i] == -1.0 && PyErr_Occurred()) {
            Py_DECREF(seq);
            return -1;
        }
    }
    Py_DECREF(seq);
    self->n = n;
    self->min = Py_HUGE_VAL;
    self->max = -Py_HUGE_VAL;
    return 0;
}

static void
histogram_dealloc(Histogram *self)
{
    PyMem_Free(self->bounds);
    PyMem_Free(self->counts);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
histogram_record(Histogram *self, PyObject *value)
{
    double v = PyFloat_AsDouble(value);
    if (v == -1.0 && PyErr_Occurred()) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) /* an int too large for a float: dropped */
            return NULL;
        PyErr_Clear();
        self->dropped++;
        Py_RETURN_NONE;
    }
    histogram_add(self, v);
    Py_RETURN_NONE;
}

static PyObject *
histogram_snapshot(Histogram *self, PyObject *Py_UNUSED(ignored))
{
    PyObject *counts = PyTuple_New(self->n + 1);
    if (counts == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i <= self->n; i++) {
        PyObject *count = PyLong_FromLongLong(self->counts[i]);
        if (count == NULL) {
            Py_DECREF(counts);
            return NULL;
        }
        PyTuple_SET_ITEM(counts, i, count);
    }
    return Py_BuildValue("(Nddd)", counts, self->sum, self->min, self->max);
}

static PyMethodDef histogram_methods[] = {
    {"record", (PyCFunction)histogram_record, METH_O, "Add one value."},
    {"snapshot", (PyCFunction)histogram_snapshot, METH_NOARGS, "(counts, sum, min, max)."},
    {NULL},
};

static PyTypeObject HistogramType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_accel.Histogram",
    .tp_basicsize = sizeof(Histogram),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Explicit-bucket histogram: bucket i counts values in (bounds[i-1], bounds[i]].",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)histogram_init,
    .tp_dealloc = (destructor)histogram_dealloc,
    .tp_methods = histogram_methods,
};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *fn, *site, *state, *plan, *var, *no_usage, *python, *end, *fail, *dict;
    Histogram *duration;
    long long started, ended;
} Monitored;

static PyObject *s_generation, *s_tracer, *s_armed, *s_usage;

/* The pure-Python wrapper's condition for its inlined path, plus the result check's site.usage. */
static int
fast_path(Monitored *self)
{
    PyObject *mine = PyObject_GetAttr(self->site, s_generation);
    PyObject *now = PyObject_GetAttr(self->state, s_generation);
    PyObject *tracer = PyObject_GetAttr(self->site, s_tracer);
    PyObject *armed = PyObject_GetAttr(self->plan, s_armed);
    int fast = mine && now && tracer && armed && tracer == Py_None && armed == Py_False &&
               PyObject_RichCompareBool(mine, now, Py_EQ) == 1;
    Py_XDECREF(mine);
    Py_XDECREF(now);
    Py_XDECREF(tracer);
    Py_XDECREF(armed);
    PyErr_Clear();
    return fast;
}

static PyObject *
monitored_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Monitored *self = (Monitored *)op;
    if (!fast_path(self))
        return PyObject_Vectorcall(self->python, args, nargsf, kwnames);
    double start = perf_counter();
    PyObject *entry = PyList_New(1);
    if (entry == NULL)
        return NULL;
    PyObject *began = PyFloat_FromDouble(start);
    if (began == NULL) {
        Py_DECREF(entry);
        return NULL;
    }
    PyList_SET_ITEM(entry, 0, began);
    PyObject *token = PyContextVar_Set(self->var, entry);
    if (token == NULL) {
        Py_DECREF(entry);
        return NULL;
    }
    self->started++;
    PyObject *result = PyObject_Vectorcall(self->fn, args, nargsf, kwnames);
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (PyContextVar_Reset(self->var, token) < 0)
        PyErr_Clear(); /* the function reset it itself: nothing of ours is left current */
    Py_DECREF(token);
    self->ended++;
    if (result == NULL) {
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL)
            PyException_SetTraceback(value, traceback);
        PyObject *done = PyObject_CallFunctionObjArgs(self->fail, entry, value, NULL);
        if (done == NULL)
            PyErr_Clear(); /* llmobs's own failure: the user's exception goes on unchanged */
        Py_XDECREF(done);
        Py_DECREF(entry);
        PyErr_Restore(type, value, traceback);
        return NULL;
    }
    PyObject *usage = PyObject_GetAttr(self->site, s_usage);
    int plain = usage == Py_None && PyList_GET_SIZE(entry) == 1 &&
                PySet_Contains(self->no_usage, (PyObject *)Py_TYPE(result)) == 1;
    Py_XDECREF(usage);
    PyErr_Clear();
    if (plain) {
        histogram_add(self->duration, perf_counter() - start);
    }
    else {
        PyObject *done = PyObject_CallFunctionObjArgs(self->end, entry, result, NULL);
        if (done == NULL)
            PyErr_Clear();
        Py_XDECREF(done);
    }
    Py_DECREF(entry);
    return result;
}

static int
monitored_init(Monitored *self, PyObject *args, PyObject *kwds)
{
    PyObject *fn, *site, *state, *plan, *var, *no_usage, *python, *end, *fail, *duration;
    if (!PyArg_ParseTuple(args, "OOOOO!O!OOOO!", &fn, &site, &state, &plan, &PyContextVar_Type, &var,
                          &PyFrozenSet_Type, &no_usage, &python, &end, &fail, &HistogramType, &duration))
        return -1;
    PyObject *given[] = {fn, site, state, plan, var, no_usage, python, end, fail, duration};
    PyObject **slots[] = {&self->fn, &self->site, &self->state, &self->plan, &self->var, &self->no_usage,
                          &self->python, &self->end, &self->fail, (PyObject **)&self->duration};
    for (size_t i = 0; i < sizeof(given) / sizeof(given[0]); i++) {
        Py_INCREF(given[i]);
        Py_XSETREF(*slots[i], given[i]);
    }
    self->vectorcall = monitored_call;
    return 0;
}

static int
monitored_traverse(Monitored *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->site);
    Py_VISIT(self->state);
    Py_VISIT(self->plan);
    Py_VISIT(self->var);
    Py_VISIT(self->no_usage);
    Py_VISIT(self->python);
    Py_VISIT(self->end);
    Py_VISIT(self->fail);
    Py_VISIT(self->dict);
    Py_VISIT(self->duration);
    return 0;
}

static int
monitored_clear(Monitored *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->site);
    Py_CLEAR(self->state);
    Py_CLEAR(self->plan);
    Py_CLEAR(self->var);
    Py_CLEAR(self->no_usage);
    Py_CLEAR(self->python);
    Py_CLEAR(self->end);
    Py_CLEAR(self->fail);
    Py_CLEAR(self->dict);
    Py_CLEAR(self->duration);
    return 0;
}

static void
monitored_dealloc(Monitored *self)
{
    PyObject_GC_UnTrack(self);
    monitored_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
monitored_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None)
        return Py_NewRef(self);
    return PyMethod_New(self, obj); /* binds as a method, as a function does */
}

static PyObject *
monitored_in_flight(Monitored *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLongLong(self->started - self->ended);
}

static PyGetSetDef monitored_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {"in_flight", (getter)monitored_in_flight, NULL, "Calls started and not ended.", NULL},
    {NULL},
};

static PyMemberDef monitored_members[] = {
    {"duration", T_OBJECT, offsetof(Monitored, duration), READONLY, "The duration histogram."},
    {NULL},
};

static PyTypeObject MonitoredType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "_accel.Monitored",
    .tp_basicsize = sizeof(Monitored),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Monitored(fn, site, state, plan, var, no_usage, python, end, fail, duration): the metrics-only call.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)monitored_init,
    .tp_dealloc = (destructor)monitored_dealloc,
    .tp_traverse = (traverseproc)monitored_traverse,
    .tp_clear = (inquiry)monitored_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Monitored, vectorcall),
    .tp_descr_get = monitored_get,
    .tp_dictoffset = offsetof(Monitored, dict),
    .tp_getset = monitored_getset,
    .tp_members = monitored_members,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_accel", "Prototype C accelerator for llmobs's metrics-only call.", -1, NULL,
};

PyMODINIT_FUNC
PyInit__accel(void)
{
    if (PyType_Ready(&HistogramType) < 0 || PyType_Ready(&MonitoredType) < 0)
        return NULL;
    s_generation = PyUnicode_InternFromString("generation");
    s_tracer = PyUnicode_InternFromString("tracer");
    s_armed = PyUnicode_InternFromString("armed");
    s_usage = PyUnicode_InternFromString("usage");
    if (!s_generation || !s_tracer || !s_armed || !s_usage)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Histogram", (PyObject *)&HistogramType) < 0 ||
        PyModule_AddObjectRef(m, "Monitored", (PyObject *)&MonitoredType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
