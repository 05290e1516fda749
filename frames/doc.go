// Package frames turns pictures into model inputs and model outputs back
// into pictures.
//
// Reading (Read): a folder of PNG, JPEG or GIF files is one sequence, its
// frames in natural name order (2.png before 10.png); an animated GIF is one
// sequence, each frame composited on the logical screen as a browser shows
// it; a folder of such folders or GIFs is a batch. The result is a
// (B, T, C, H, W) float32 tensor holding pixel/maxval·PixelMax, where maxval
// is 255 for 8-bit images and 65535 for 16-bit PNGs.
//
// Channels: a sequence is grey (C = 1) when every pixel of every frame has
// R = G = B (grey PNGs and JPEGs and GIFs with grey palettes are grey
// without looking further), otherwise RGB (C = 3). Alpha is composited over
// black. In a batch whose sequences disagree, grey sequences are widened to
// RGB (replicated, which loses nothing). ReadOptions.Channels forces a
// count to match a model: 3 replicates grey, 1 converts RGB to ITU-R BT.601
// luma (0.299 R + 0.587 G + 0.114 B, computed on the full-precision values).
//
// Every file's declared size is read with image.DecodeConfig before any
// pixel is decoded: sides over MaxSide, frames over MaxFramePixels and whole
// inputs over MaxValues are refused. Decoders run behind a recover, so a
// hostile file is an error naming it, never a panic.
//
// Layout (ForGraph) rearranges (B, T, C, H, W) frames for an ONNX graph's
// first input: (B, T, H, W), (B, T, C, H, W) or channels-last
// (B, T, H, W, C), decided from the input's rank and static dims.
//
// Writing (Write, WriteGIF, WritePNGs) maps values back through PixelMax to
// 0..255, rounding to nearest and clipping: an animated GIF (one frame per
// step, looping) or a folder of PNGs (000.png, 001.png, …). Strip lays the
// input, the prediction and the truth side by side in each frame. Files are
// written atomically; a failed write leaves nothing behind.
package frames
