package inferencepb

import (
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestWireFacts pins the names and field numbers every v2 client relies
// on (KServe's grpc_predict_v2.proto, Triton's stream extension), so an
// edit of inference.proto that would break them fails here.
func TestWireFacts(t *testing.T) {
	fields := map[string]map[string]protoreflect.FieldNumber{
		"inference.ModelInferRequest":                            {"model_name": 1, "model_version": 2, "id": 3, "parameters": 4, "inputs": 5, "outputs": 6, "raw_input_contents": 7},
		"inference.ModelInferRequest.InferInputTensor":           {"name": 1, "datatype": 2, "shape": 3, "parameters": 4, "contents": 5},
		"inference.ModelInferRequest.InferRequestedOutputTensor": {"name": 1, "parameters": 2},
		"inference.ModelInferResponse":                           {"model_name": 1, "model_version": 2, "id": 3, "parameters": 4, "outputs": 5, "raw_output_contents": 6},
		"inference.ModelInferResponse.InferOutputTensor":         {"name": 1, "datatype": 2, "shape": 3, "parameters": 4, "contents": 5},
		"inference.ModelStreamInferResponse":                     {"error_message": 1, "infer_response": 2},
		"inference.InferParameter":                               {"bool_param": 1, "int64_param": 2, "string_param": 3, "double_param": 4, "uint64_param": 5},
		"inference.InferTensorContents":                          {"bool_contents": 1, "int_contents": 2, "int64_contents": 3, "uint_contents": 4, "uint64_contents": 5, "fp32_contents": 6, "fp64_contents": 7, "bytes_contents": 8},
		"inference.ModelMetadataRequest":                         {"name": 1, "version": 2},
		"inference.ModelMetadataResponse":                        {"name": 1, "versions": 2, "platform": 3, "inputs": 4, "outputs": 5},
		"inference.ModelMetadataResponse.TensorMetadata":         {"name": 1, "datatype": 2, "shape": 3},
		"inference.ModelReadyRequest":                            {"name": 1, "version": 2},
		"inference.ModelReadyResponse":                           {"ready": 1},
		"inference.ServerMetadataResponse":                       {"name": 1, "version": 2, "extensions": 3},
		"inference.ServerLiveResponse":                           {"live": 1},
		"inference.ServerReadyResponse":                          {"ready": 1},
	}
	for msg, want := range fields {
		mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(msg))
		if err != nil {
			t.Errorf("%s: %v", msg, err)
			continue
		}
		fs := mt.Descriptor().Fields()
		if fs.Len() != len(want) {
			t.Errorf("%s has %d fields, want %d", msg, fs.Len(), len(want))
		}
		for name, num := range want {
			f := fs.ByName(protoreflect.Name(name))
			if f == nil || f.Number() != num {
				t.Errorf("%s.%s: %v, want field %d", msg, name, f, num)
			}
		}
	}
	sd := File_inference_proto.Services().ByName("GRPCInferenceService")
	if sd == nil || sd.FullName() != "inference.GRPCInferenceService" {
		t.Fatal("no service inference.GRPCInferenceService")
	}
	for _, m := range []string{"ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer", "ModelStreamInfer"} {
		if sd.Methods().ByName(protoreflect.Name(m)) == nil {
			t.Errorf("no RPC %s", m)
		}
	}
	if st := sd.Methods().ByName("ModelStreamInfer"); !st.IsStreamingClient() || !st.IsStreamingServer() || st.Output().FullName() != "inference.ModelStreamInferResponse" {
		t.Error("ModelStreamInfer is not bidirectional or does not return ModelStreamInferResponse")
	}
}
