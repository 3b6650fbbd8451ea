/*
 * FANN peer for the fastbp peer comparison (see benchmarks/peers/__init__.py).
 *
 * Compiled by benchmarks/peers/__init__.py when the comparison first runs it, into a
 * temporary directory:  gcc -O2 fann_peer.c -lfloatfann -lm
 *
 * Usage:
 *   fann_peer DATA.train W_IN.f32 W_OUT.f32 EPOCHS LEARNING_RATE N0 N1 ... NL
 *
 *   DATA.train  FANN text training file (fann_read_train_from_file format)
 *   W_IN.f32    initial weights, raw little-endian float32, per layer l:
 *               W_l (n_in x n_out, row-major) followed by b_l (n_out)
 *   W_OUT.f32   final weights are written here in the same layout
 *   N0..NL      layer sizes (input .. output)
 *
 * Network: fully connected, hidden FANN_SIGMOID_SYMMETRIC with steepness 1.0
 * (= tanh), output FANN_SIGMOID with steepness 0.5 (= logistic 1/(1+e^-x)),
 * FANN_TRAIN_INCREMENTAL (per-sample SGD), momentum 0, FANN_ERRORFUNC_LINEAR.
 *
 * Output on stdout (one record per line, parsed by benchmarks/peers/__init__.py):
 *   init_mse <mse>                 fann_test_data before training
 *   epoch <i> <seconds> <mse>      per timed epoch (shuffle + fann_train_epoch)
 *   final_mse <mse>                fann_test_data after training
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <floatfann.h>

#define MAX_LAYERS 16

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void die(const char *msg)
{
    fprintf(stderr, "fann_peer: %s\n", msg);
    exit(2);
}

/* Offset of (W_l, b_l) in the flat weight file, and FANN neuron ids.
 * FANN numbers neurons consecutively layer by layer, each layer followed by
 * its bias neuron, so layer l starts at sum_{k<l} (sizes[k] + 1). */
static unsigned layer_first[MAX_LAYERS + 1];
static size_t param_offset[MAX_LAYERS];

/* Index into the flat weight vector for FANN connection (from -> to). */
static size_t flat_index(unsigned nl, const unsigned *sizes, unsigned from, unsigned to)
{
    for (unsigned l = 1; l < nl; l++) {
        if (to >= layer_first[l] && to < layer_first[l] + sizes[l]) {
            unsigned j = to - layer_first[l];
            unsigned i = from - layer_first[l - 1];
            if (from < layer_first[l - 1] || i > sizes[l - 1])
                die("connection does not come from the previous layer");
            if (i == sizes[l - 1]) /* bias neuron of layer l-1 */
                return param_offset[l - 1] + (size_t)sizes[l - 1] * sizes[l] + j;
            return param_offset[l - 1] + (size_t)i * sizes[l] + j;
        }
    }
    die("connection into an unknown neuron");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 8)
        die("usage: fann_peer DATA W_IN W_OUT EPOCHS LR N0 N1 [... NL]");
    const char *data_path = argv[1], *w_in = argv[2], *w_out = argv[3];
    int epochs = atoi(argv[4]);
    float lr = (float)atof(argv[5]);
    unsigned nl = (unsigned)(argc - 6);
    unsigned sizes[MAX_LAYERS];
    if (nl > MAX_LAYERS)
        die("too many layers");
    size_t n_params = 0;
    layer_first[0] = 0;
    for (unsigned l = 0; l < nl; l++) {
        sizes[l] = (unsigned)atoi(argv[6 + l]);
        layer_first[l + 1] = layer_first[l] + sizes[l] + 1;
        if (l + 1 < nl) {
            param_offset[l] = n_params;
            n_params += (size_t)(sizes[l] + 1) * (size_t)atoi(argv[7 + l]);
        }
    }

    struct fann *ann = fann_create_standard_array(nl, sizes);
    if (!ann)
        die("fann_create_standard_array failed");
    fann_set_activation_function_hidden(ann, FANN_SIGMOID_SYMMETRIC);
    fann_set_activation_steepness_hidden(ann, 1.0f);
    fann_set_activation_function_output(ann, FANN_SIGMOID);
    fann_set_activation_steepness_output(ann, 0.5f);
    fann_set_training_algorithm(ann, FANN_TRAIN_INCREMENTAL);
    fann_set_learning_rate(ann, lr);
    fann_set_learning_momentum(ann, 0.0f);
    fann_set_train_error_function(ann, FANN_ERRORFUNC_LINEAR);

    /* Load the shared initial weights and map them onto FANN connections. */
    unsigned n_conn = fann_get_total_connections(ann);
    if (n_conn != n_params)
        die("connection count does not match the layer sizes");
    float *flat = malloc(n_params * sizeof(float));
    struct fann_connection *conn = malloc(n_conn * sizeof(struct fann_connection));
    if (!flat || !conn)
        die("out of memory");
    FILE *f = fopen(w_in, "rb");
    if (!f || fread(flat, sizeof(float), n_params, f) != n_params)
        die("cannot read initial weights");
    fclose(f);
    fann_get_connection_array(ann, conn);
    for (unsigned c = 0; c < n_conn; c++)
        conn[c].weight = flat[flat_index(nl, sizes, conn[c].from_neuron, conn[c].to_neuron)];
    fann_set_weight_array(ann, conn, n_conn);

    struct fann_train_data *data = fann_read_train_from_file(data_path);
    if (!data)
        die("cannot read training data");
    if (fann_length_train_data(data) == 0)
        die("empty training data");

    /* Warm-up (untimed): one epoch on a small slice, then restore the
     * initial weights so the timed epochs start from `init`. */
    unsigned n_warm = fann_length_train_data(data) < 64 ? fann_length_train_data(data) : 64;
    struct fann_train_data *warm = fann_subset_train_data(data, 0, n_warm);
    fann_train_epoch(ann, warm);
    fann_destroy_train(warm);
    fann_set_weight_array(ann, conn, n_conn);

    fann_reset_MSE(ann);
    printf("init_mse %.9g\n", fann_test_data(ann, data));

    srand(0); /* fann_shuffle_train_data uses rand() */
    for (int e = 0; e < epochs; e++) {
        double t0 = now_seconds();
        fann_shuffle_train_data(data); /* FANN does not shuffle by itself */
        float mse = fann_train_epoch(ann, data);
        double t1 = now_seconds();
        printf("epoch %d %.9f %.9g\n", e, t1 - t0, mse);
    }

    fann_reset_MSE(ann);
    printf("final_mse %.9g\n", fann_test_data(ann, data));

    /* Write the final weights back in the flat (W, b) layout. */
    fann_get_connection_array(ann, conn);
    for (unsigned c = 0; c < n_conn; c++)
        flat[flat_index(nl, sizes, conn[c].from_neuron, conn[c].to_neuron)] = conn[c].weight;
    f = fopen(w_out, "wb");
    if (!f || fwrite(flat, sizeof(float), n_params, f) != n_params)
        die("cannot write final weights");
    fclose(f);

    free(flat);
    free(conn);
    fann_destroy_train(data);
    fann_destroy(ann);
    return 0;
}
