from textmill.trainer.loss_plot import plot_history, read_history


def test_resumed_history_keeps_last_row_per_epoch_and_plots(tmp_path):
    csv = tmp_path / "history.csv"
    csv.write_text(
        "epoch,loss,val_loss,val_nll\n0,5.0,5.5,5.4\n1,4.0,4.6,4.5\n"
        # a resumed run appends its own header and re-runs epoch 1
        "epoch,loss,val_loss,val_nll\n1,3.9,4.5,4.4\n2,3.0,3.8,3.7\n"
    )
    history = read_history(str(csv))
    assert history["epoch"] == [1, 2, 3]
    assert history["loss"] == [5.0, 3.9, 3.0]
    assert history["val_nll"] == [5.4, 4.4, 3.7]
    png = tmp_path / "loss.png"
    plot_history(str(csv), str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
